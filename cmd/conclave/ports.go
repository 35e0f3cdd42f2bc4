package main

import (
	"net"

	"github.com/multiformats/go-multiaddr"
)

// checkPortsFree reports a fixed listen port that another process holds.
// libp2p binds with SO_REUSEPORT, so two daemons could otherwise share a
// port silently and split its connections between them; a plain bind
// (without SO_REUSEPORT) fails against any holder.
func checkPortsFree(listen []string) error {
	for _, s := range listen {
		ma, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return usageErr("listen: %q: %v", s, err)
		}
		ip, err := ma.ValueForProtocol(multiaddr.P_IP4)
		if err != nil {
			if ip, err = ma.ValueForProtocol(multiaddr.P_IP6); err != nil {
				continue // DNS or other addresses: libp2p reports its own errors
			}
		}
		if port, err := ma.ValueForProtocol(multiaddr.P_TCP); err == nil && port != "0" {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				return listenError("listen "+s, err)
			}
			ln.Close()
		}
		if port, err := ma.ValueForProtocol(multiaddr.P_UDP); err == nil && port != "0" {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
			if err != nil {
				return listenError("listen "+s, err)
			}
			pc.Close()
		}
	}
	return nil
}
