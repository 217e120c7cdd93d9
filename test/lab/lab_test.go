package lab

import (
	"os/exec"
	"strings"
	"testing"
)

func TestLabPingAndCleanup(t *testing.T) {
	var names []string
	t.Run("build", func(t *testing.T) {
		l := New(t, "a", "b")
		for _, ns := range l.Hosts {
			names = append(names, ns)
		}
		if out, err := l.Exec("a", "ping", "-c1", "-W2", l.Addr["b"]); err != nil {
			t.Fatalf("ping a->b: %v: %s", err, out)
		}
	})
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s left behind", n)
		}
	}
}
