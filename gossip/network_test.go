package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/multiformats/go-multiaddr"
)

// waitConnected waits, on the host's event bus, until n has a connection
// to p.
func waitConnected(ctx context.Context, n *Network, p peer.ID) error {
	sub, err := n.Host().EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return err
	}
	defer sub.Close()
	for n.Host().Network().Connectedness(p) != network.Connected {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// eventually re-checks cond every few milliseconds until it holds or ctx
// ends. It is for state that offers no event to wait on (a DHT routing
// table filling up after identify).
func eventually(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	return waitFor(ctx, tick.C, cond)
}

// ensureLoopbackMulticast makes sure the loopback interface accepts
// multicast, which mDNS needs. Linux brings lo up without the MULTICAST
// flag, so a loopback-only mDNS test cannot work until it is set; as root
// the test sets it (`ip link set dev lo multicast on`, harmless: it only
// lets multicast packets loop back on this host).
func ensureLoopbackMulticast(t *testing.T) *net.Interface {
	t.Helper()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatalf("no loopback interface: %v", err)
	}
	if lo.Flags&net.FlagMulticast != 0 {
		return lo
	}
	if os.Geteuid() != 0 {
		t.Fatal("the loopback interface has no MULTICAST flag, so mDNS cannot run on it; " +
			"run `ip link set dev lo multicast on` as root (or run the tests as root)")
	}
	if out, err := exec.Command("ip", "link", "set", "dev", "lo", "multicast", "on").CombinedOutput(); err != nil {
		t.Fatalf("enabling multicast on lo: %v: %s", err, out)
	}
	t.Log("enabled multicast on the loopback interface for the mDNS test")
	if lo, err = net.InterfaceByName("lo"); err != nil || lo.Flags&net.FlagMulticast == 0 {
		t.Fatalf("lo still has no MULTICAST flag (err %v)", err)
	}
	return lo
}

func TestMDNSDiscovery(t *testing.T) {
	lo := ensureLoopbackMulticast(t)
	var tag [4]byte
	rand.Read(tag[:])
	// A fresh service name keeps this test's hosts from meeting any other
	// Conclave process on the machine.
	service := "_ct" + hex.EncodeToString(tag[:]) + "._udp"
	nets := newNets(t, 2, func(c *Config) {
		c.DisableMDNS = false
		c.MDNSService = service
		c.MDNSInterfaces = []string{lo.Name}
	})
	ctx := testCtx(t, 30*time.Second)
	if err := waitConnected(ctx, nets[0], nets[1].ID()); err != nil {
		t.Fatalf("hosts did not find each other by mDNS: %v", err)
	}
	for _, c := range nets[0].Host().Network().ConnsToPeer(nets[1].ID()) {
		if ip, _ := c.RemoteMultiaddr().ValueForProtocol(multiaddr.P_IP4); ip != "127.0.0.1" {
			t.Fatalf("mDNS connection to %v, want 127.0.0.1", c.RemoteMultiaddr())
		}
	}
}

func TestDHTFindPeerAndRendezvous(t *testing.T) {
	const hosts = 10
	boot := newNet(t, func() Config { c := testConfig(t); c.DHT = DHTServer; return c }())
	nets := []*Network{boot}
	nets = append(nets, newNets(t, hosts-1, func(c *Config) {
		c.DHT = DHTServer
		c.BootstrapPeers = []peer.AddrInfo{boot.AddrInfo()}
	})...)
	ctx := testCtx(t, 40*time.Second)
	for _, n := range nets {
		if err := eventually(ctx, func() bool { return n.dht.RoutingTable().Size() > 0 }); err != nil {
			t.Fatalf("%s: empty routing table: %v", n.ID(), err)
		}
	}

	// Host 1 knows only the bootstrap host; it finds host 9 through the DHT.
	seeker, target := nets[1], nets[hosts-1]
	// Forget everything the seeker may have learnt about the target from
	// DHT traffic, so the lookup has to go through the DHT.
	seeker.Host().Network().ClosePeer(target.ID())
	seeker.Host().Peerstore().ClearAddrs(target.ID())
	ai, err := seeker.FindPeer(ctx, target.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ai.ID != target.ID() || len(ai.Addrs) == 0 {
		t.Fatalf("FindPeer returned %v", ai)
	}
	if err := seeker.Connect(ctx, ai); err != nil {
		t.Fatalf("connecting to the found addresses: %v", err)
	}

	// Hosts 3..6 advertise a group; host 8 finds them by its rendezvous key.
	gid := []byte("rendezvous-group")
	var members []peer.ID
	for _, n := range nets[3:7] {
		if err := n.Advertise(ctx, gid); err != nil {
			t.Fatal(err)
		}
		members = append(members, n.ID())
	}
	var found []peer.AddrInfo
	err = eventually(ctx, func() bool {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		found, err = nets[8].FindMembers(fctx, gid, 10)
		return len(found) == len(members)
	})
	if err != nil {
		t.Fatalf("found %d of %d members: %v", len(found), len(members), err)
	}
	for _, ai := range found {
		if !slices.Contains(members, ai.ID) {
			t.Fatalf("found %s, not a member", ai.ID)
		}
	}
	// Another group's key finds nobody.
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if other, _ := nets[8].FindMembers(octx, []byte("other-group"), 10); len(other) != 0 {
		t.Fatalf("found %d members of a group nobody advertised", len(other))
	}
}

// TestRelay: A and B refuse direct connections to each other (as if behind
// NATs hole punching cannot open), B reserves a slot on relay R through
// autorelay, and A reaches B through the circuit.
func TestRelay(t *testing.T) {
	relay := newNet(t, func() Config {
		c := testConfig(t)
		c.RelayService = true
		c.ForcePublicReachability = true
		return c
	}())
	got := make(chan []byte, 1)
	b := newNet(t, func() Config {
		c := testConfig(t)
		c.DisableAutoRelay = false
		c.StaticRelays = []peer.AddrInfo{relay.AddrInfo()}
		c.ForcePrivateReachability = true
		c.Handlers.Direct = directFunc(func(_ context.Context, _ peer.ID, _, payload []byte) error {
			got <- payload
			return nil
		})
		return c
	}())
	a := newNet(t, testConfig(t))
	a.Gater().RelayedOnly(b.ID())
	b.Gater().RelayedOnly(a.ID())

	ctx := testCtx(t, 40*time.Second)

	// A cannot dial B directly...
	if err := waitConnected(ctx, b, relay.ID()); err != nil {
		t.Fatalf("B never connected to its static relay: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := a.Connect(dctx, b.AddrInfo()); err == nil {
		t.Fatal("A connected to B directly despite the gaters")
	}
	cancel()
	a.Host().Peerstore().ClearAddrs(b.ID())

	// ...but reaches it through the relay once B holds a reservation there.
	// autorelay publishes no circuit address for a relay that has only
	// loopback addresses (it keeps public ones), so A builds the circuit
	// address itself and retries until the reservation is in place.
	circuit := multiaddr.StringCast("/p2p/" + relay.ID().String() + "/p2p-circuit")
	var circuitAddrs []multiaddr.Multiaddr
	for _, ra := range relay.Host().Addrs() {
		circuitAddrs = append(circuitAddrs, ra.Encapsulate(circuit))
	}
	var lastErr error
	err := eventually(ctx, func() bool {
		a.Host().Network().(*swarm.Swarm).Backoff().Clear(b.ID())
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		lastErr = a.Connect(cctx, peer.AddrInfo{ID: b.ID(), Addrs: circuitAddrs})
		return lastErr == nil
	})
	if err != nil {
		t.Fatalf("connecting through the relay: %v (last error %v)", err, lastErr)
	}
	if err := a.SendDirect(ctx, b.ID(), []byte("g"), []byte("through the relay")); err != nil {
		t.Fatal(err)
	}
	if p := <-got; !bytes.Equal(p, []byte("through the relay")) {
		t.Fatalf("B got %q", p)
	}
	for _, c := range a.Host().Network().ConnsToPeer(b.ID()) {
		if !isRelayed(c.RemoteMultiaddr()) {
			t.Fatalf("A has a direct connection to B: %v", c.RemoteMultiaddr())
		}
	}
}

// TestPartition cuts four hosts into two halves with the connection gater,
// checks that gossip stops crossing the cut, then heals it.
func TestPartition(t *testing.T) {
	nets := newNets(t, 4, nil)
	for i := range nets {
		for j := i + 1; j < len(nets); j++ {
			connect(t, nets[i], nets[j])
		}
	}
	gid := []byte("partition-group")
	groups := make([]*Group, len(nets))
	ctx := testCtx(t, 40*time.Second)
	for i, n := range nets {
		g, err := n.Join(gid)
		if err != nil {
			t.Fatal(err)
		}
		groups[i] = g
	}
	for _, g := range groups {
		if err := g.WaitMesh(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(payload string, receivers ...int) {
		t.Helper()
		for _, r := range receivers {
			m, err := nextRemote(ctx, groups[r])
			if err != nil || string(m.Payload) != payload {
				t.Fatalf("host %d: got %q, %v; want %q", r, m.Payload, err, payload)
			}
		}
	}
	expectNothing := func(receivers ...int) {
		t.Helper()
		for _, r := range receivers {
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			m, err := nextRemote(qctx, groups[r])
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("host %d received %q across the partition (err %v)", r, m.Payload, err)
			}
		}
	}

	groups[0].Publish(ctx, KindGroupMessage, []byte("before"))
	expect("before", 1, 2, 3)

	left, right := nets[:2], nets[2:]
	for _, l := range left {
		for _, r := range right {
			l.Block(r.ID())
			r.Block(l.ID())
		}
	}
	for _, l := range left {
		for _, r := range right {
			if c := l.Host().Network().Connectedness(r.ID()); c == network.Connected {
				t.Fatalf("still connected across the partition")
			}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := nets[2].Connect(dctx, nets[0].AddrInfo()); err == nil {
		t.Fatal("a dial across the partition succeeded")
	}
	cancel()
	if err := groups[0].Publish(ctx, KindGroupMessage, []byte("left only")); err != nil {
		t.Fatal(err)
	}
	if err := groups[3].Publish(ctx, KindGroupMessage, []byte("right only")); err != nil {
		t.Fatal(err)
	}
	expect("left only", 1)
	expect("right only", 2)
	expectNothing(0, 1, 2, 3)

	for _, l := range left {
		for _, r := range right {
			l.Unblock(r.ID())
			r.Unblock(l.ID())
		}
	}
	connect(t, nets[0], nets[2])
	connect(t, nets[1], nets[3])
	// Every host must have gossip streams to its new neighbours (pubsub
	// lists a topic peer only once it can send to it) before publishing.
	for i, g := range groups {
		if err := eventually(ctx, func() bool { return len(g.Peers()) == 2 }); err != nil {
			t.Fatalf("host %d: topic peers %v after healing", i, g.Peers())
		}
		if err := g.WaitMesh(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := groups[2].Publish(ctx, KindGroupMessage, []byte("healed")); err != nil {
		t.Fatal(err)
	}
	expect("healed", 0, 1, 3)
}

// directFunc adapts a function to DirectMessageHandler.
type directFunc func(ctx context.Context, from peer.ID, groupID, payload []byte) error

func (f directFunc) HandleDirect(ctx context.Context, from peer.ID, groupID, payload []byte) error {
	return f(ctx, from, groupID, payload)
}
