package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// ErrRuntime reports a runtime API command that HAProxy rejected.
var ErrRuntime = errors.New("haproxy runtime command failed")

// DefaultTimeout bounds one runtime API exchange; HAProxy answers local
// socket commands in well under a millisecond, so 2s only trips on a hang.
const DefaultTimeout = 2 * time.Second

// maxReply bounds a reply read from a socket (show servers state of 1,279
// backends with 8 slots is about 1.5 MB).
const maxReply = 16 << 20

// Socket is a client for one HAProxy CLI socket (stats or master). It opens
// one connection per command, so it is safe for concurrent use.
type Socket struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path or host:port.
	Address string
	// Timeout bounds each exchange; zero means DefaultTimeout.
	Timeout time.Duration
	// Master says the socket is the master CLI, which in 2.6 keeps the
	// connection open after a reply; a reply then ends at a blank line.
	Master bool
}

// Command sends one command and returns HAProxy's reply.
func (s Socket) Command(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\n\r;") {
		return "", fmt.Errorf("command %q: contains a separator: %w", cmd, ErrRuntime)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, s.Network, s.Address)
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", s.Address, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("write %q: %w", cmd, err)
	}
	reply, err := s.read(conn)
	if err != nil {
		return reply, fmt.Errorf("read reply to %q: %w", cmd, err)
	}
	return reply, nil
}

func (s Socket) read(conn net.Conn) (string, error) {
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for buf.Len() < maxReply {
		n, err := conn.Read(chunk)
		buf.Write(chunk[:n])
		if s.Master && bytes.HasSuffix(buf.Bytes(), []byte("\n\n")) {
			return buf.String(), nil
		}
		if errors.Is(err, io.EOF) {
			return buf.String(), nil
		}
		if err != nil {
			return buf.String(), err
		}
	}
	return buf.String(), fmt.Errorf("reply over %d bytes: %w", maxReply, ErrRuntime)
}

// Exec runs a command whose success reply is empty (or a known benign
// notice) and turns any other reply into an ErrRuntime.
func (s Socket) Exec(ctx context.Context, cmd string) error {
	reply, err := s.Command(ctx, cmd)
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(reply); msg != "" && !benign(msg) {
		return fmt.Errorf("%q: %s: %w", cmd, msg, ErrRuntime)
	}
	return nil
}

// benign recognises informational replies to successful set server commands.
func benign(msg string) bool {
	return strings.HasPrefix(msg, "IP changed from") || strings.HasPrefix(msg, "no need to change") ||
		strings.HasPrefix(msg, "port changed from") || strings.HasPrefix(msg, "IP and port changed")
}
