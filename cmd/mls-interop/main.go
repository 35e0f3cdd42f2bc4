// Command mls-interop serves the MLS working group's interop protocol (the
// MLSClient gRPC service of mls_client.proto) on top of Conclave's mls
// package, so that the working group's test runner can drive Conclave
// against other MLS implementations:
//
//	mls-interop -port 50051
//
// The server keeps every state in memory and is meant for testing only: it
// returns private keys on request, as the protocol asks.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/conclave-im/conclave/internal/interop"
	"github.com/conclave-im/conclave/internal/interop/mlsclientpb"
	"github.com/conclave-im/conclave/mls"
)

func main() {
	port := flag.Int("port", 50051, "TCP port to listen on")
	host := flag.String("host", "", "address to listen on (default: all)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err == nil {
		err = serve(ctx, lis, log)
	}
	if err != nil {
		log.Error("mls-interop", "err", err)
		os.Exit(1)
	}
}

// serve answers MLSClient calls on lis until ctx ends.
func serve(ctx context.Context, lis net.Listener, log *slog.Logger) error {
	srv := grpc.NewServer(grpc.UnaryInterceptor(logCalls(log)))
	mlsclientpb.RegisterMLSClientServer(srv, interop.NewService(&mls.Config{}))
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			srv.GracefulStop()
		case <-stopped:
		}
	}()
	log.Info("mls-interop listening", "addr", lis.Addr().String(), "name", interop.Name)
	return srv.Serve(lis)
}

// logCalls logs every call at debug level and every failed call at warn
// level, which is what one reads when another implementation disagrees.
func logCalls(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			log.Warn("rpc failed", "method", info.FullMethod, "err", err)
		} else {
			log.Debug("rpc", "method", info.FullMethod)
		}
		return resp, err
	}
}
