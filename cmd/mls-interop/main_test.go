package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/conclave-im/conclave/internal/interop"
)

// TestServe runs the application scenario against two servers started the
// way the command starts them, then stops them through the context.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	var pool []*interop.Client
	for range 2 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- serve(srvCtx, lis, slog.New(slog.DiscardHandler)) }()
		c, err := interop.Dial(ctx, lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pool = append(pool, c.Client)
	}
	cfg, err := interop.LoadConfig(filepath.Join("..", "..", "testdata", "interop", "application.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range interop.Failed(interop.RunScenario(ctx, "application", cfg, pool, 1, interop.RunOptions{})) {
		t.Errorf("%s %s shift %d: %v", o.Script, o.Mode(), o.Shift, o.Err)
	}
	stop()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("server did not stop")
		}
	}
}
