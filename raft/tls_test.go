package raft

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goldentooth/edged/test/freeport"
	"github.com/goldentooth/edged/test/wait"
)

// syncBuf is a goroutine-safe log buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestWrongCAPeerRefused starts a real single-host group with mutual TLS and
// dials it with a certificate from another CA: the handshake fails, the
// host logs the refusal clearly, and a peer with the right CA gets in.
func TestWrongCAPeerRefused(t *testing.T) {
	good, evil := mustCA(t, "edged"), mustCA(t, "evil")
	var logs syncBuf
	addr := freeport.Addr(t)
	s, err := Open(Config{NodeID: "h1", BindAddr: addr, DataDir: t.TempDir(),
		Peers: []Peer{{ID: "h1", Address: addr}}, TLS: good.node(t, "h1"),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	dial := func(files TLSFiles) error {
		_, cli, err := loadTLS(files)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.Dial("tcp", addr, cli)
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports a rejected client certificate on the first read.
		if _, err := c.Write(append([]byte{connLease}, `{"from":"probe"}`+"\n"...)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return err
	}
	// A peer whose certificate comes from another CA (it trusts ours).
	intruder := evil.node(t, "intruder")
	intruder.CAFile = good.CAFile
	err = dial(intruder)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wrong-CA peer: got err %v, want a certificate error", err)
	}
	wait.ForBool(t, 5*time.Second, "the refusal to be logged", func() bool {
		out := logs.String()
		return strings.Contains(out, "raft peer refused") && strings.Contains(out, "unknown authority") &&
			strings.Contains(out, "level=WARN")
	})
	t.Log(grepLines(logs.String(), "refused"))
	// A peer entirely of another CA refuses us, and we log the refusal too.
	if err := dial(evil.node(t, "stranger")); err == nil {
		t.Fatal("peer of another CA completed a handshake")
	} // Trusting another CA as a client is refused from our side too.
	_, cli, _ := loadTLS(evil.node(t, "other"))
	if _, err := tls.Dial("tcp", addr, cli); err == nil {
		t.Fatal("client trusting a different CA accepted our server certificate")
	}
	// The right CA passes the handshake (the server then waits for a renewal).
	if err := dial(good.node(t, "h2")); err != nil && strings.Contains(err.Error(), "certificate") {
		t.Fatalf("good peer refused: %v", err)
	}
}

func TestInsecurePlaintextWarns(t *testing.T) {
	var logs syncBuf
	s, err := Open(Config{NodeID: "h1", BindAddr: "127.0.0.1:0", DataDir: t.TempDir(), InsecurePlaintext: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "plain TCP") {
		t.Errorf("no plain-TCP warning logged:\n%s", logs.String())
	}
}

func TestConfigRequiresTLS(t *testing.T) {
	_, err := Open(Config{NodeID: "h1", BindAddr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "insecurePlaintext") {
		t.Fatalf("Open without TLS files: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
