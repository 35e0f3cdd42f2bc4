package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"
)

// ErrNotLoopback reports a TCP address for the API that other hosts could
// reach.
var ErrNotLoopback = errors.New("api: TCP address must be on loopback")

// ErrSocketInUse reports a socket path where another daemon answers.
var ErrSocketInUse = errors.New("api: another daemon is listening on the socket")

// ListenUnix listens on a Unix socket at path with mode 0600. A stale
// socket file left by a daemon that died is replaced; a live one is
// ErrSocketInUse. Connections from a process whose user is not
// allowUID are closed at once where the OS reports peer credentials
// (Linux); elsewhere the file mode alone keeps other users out.
func ListenUnix(path string, allowUID int) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("api: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrSocketInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api: remove stale socket: %w", err)
		}
	}
	// The umask makes the socket 0600 from the start, so no other user
	// can connect in the moment before the chmod.
	var ln net.Listener
	err := withUmask(0o177, func() (err error) {
		ln, err = net.Listen("unix", path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: chmod socket: %w", err)
	}
	return &uidListener{Listener: ln, uid: allowUID}, nil
}

// uidListener drops connections from other users.
type uidListener struct {
	net.Listener
	uid int
}

func (l *uidListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return c, nil
		}
		uid, known, err := peerUID(uc)
		if err != nil || (known && uid != l.uid) {
			c.Close()
			continue
		}
		return c, nil
	}
}

// ListenTCP listens on a loopback TCP address ("127.0.0.1:7419",
// "[::1]:7419", "localhost:7419").
func ListenTCP(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("api: TCP address %q: %w", addr, err)
	}
	if !loopbackHost(host) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	if host == "localhost" {
		addr = net.JoinHostPort("127.0.0.1", addr[strings.LastIndex(addr, ":")+1:])
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// tokenBytes is the bearer token's entropy.
const tokenBytes = 32

// LoadOrCreateToken reads the bearer token at path, or creates one (mode
// 0600) if the file does not exist. A token file that others can read is
// refused rather than used.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("api: token: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("api: token file %s has mode %v; it must be 0600", path, fi.Mode().Perm())
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 2*tokenBytes {
			return "", fmt.Errorf("api: token file %s is too short; delete it to get a new one", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("api: token: %w", err)
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("api: token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("api: token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("api: token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("api: token: %w", err)
	}
	return tok, nil
}
