package edgelab

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/test/wait"
)

// recoverGoal is issue 14's bound: after `edged recover` on the survivor,
// every VIP is served again within 60 s.
const recoverGoal = 60 * time.Second

// TestRecoverAfterTwoHostsDie kills two of the three edge hosts for good:
// the survivor has no quorum and its VIPs go dark (fencing). The operator
// runs the runbook: stop edged on the survivor, `edged recover --yes`,
// start it. Every Service keeps its IP and every VIP is served by the
// survivor within the goal. One dead host then comes back with its old
// data: the survivor refuses it (another cluster ID), stays a one-member
// group and keeps serving every VIP.
func TestRecoverAfterTwoHostsDie(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver)")
	}
	l := New(t, Options{})
	vips := mustServices(t, l)
	before := ingressIPs(t, l)
	survivor, dead := l.Edges[0], l.Edges[1:]
	for _, e := range dead {
		if _, err := l.Crash(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.Until(30*time.Second, survivor.ID+" without quorum drops every lease", func() (bool, string) {
		st, err := l.Status(survivor)
		if err != nil {
			return false, err.Error()
		}
		return len(st.Leases) == 0, fmt.Sprint(st.Leases)
	}); err != nil {
		t.Fatalf("%v\n%s", err, l.LogTails(2000))
	}

	// The runbook: stop edged (SIGTERM, as systemctl stop: with no leader
	// to hand over to it must not wait out its whole shutdown budget),
	// recover from the local state, start it.
	stopping := time.Now()
	if err := l.TermEdged(survivor, 30*time.Second); err != nil {
		t.Fatalf("stop %s: %v", survivor.ID, err)
	}
	t.Logf("edged on %s stopped %v after SIGTERM", survivor.ID, time.Since(stopping).Round(time.Millisecond))
	if took := time.Since(stopping); took > 10*time.Second {
		t.Errorf("stopping %s without a majority took %v", survivor.ID, took.Round(time.Millisecond))
	}
	out, err := l.Exec(survivor.Host, l.Edged(), "recover", "--config", survivor.Config, "--yes")
	if err != nil {
		t.Fatalf("edged recover: %v\n%s", err, out)
	}
	t.Logf("edged recover:\n%s", out)
	start := time.Now()
	if err := l.StartEdged(survivor); err != nil {
		t.Fatal(err)
	}
	for _, ip := range vips {
		p := l.StartProbe(ip, 50*time.Millisecond)
		err := p.WaitOK(3, recoverGoal-time.Since(start))
		p.Stop()
		if err != nil {
			t.Fatalf("%s not served %v after the restart: %v\n%s", ip, time.Since(start).Round(time.Millisecond), err, l.LogTails(3000))
		}
	}
	served := time.Since(start)
	t.Logf("all %d VIPs served by the recovered survivor %v after its start", len(vips), served.Round(time.Millisecond))
	if after := ingressIPs(t, l); !maps.Equal(before, after) {
		t.Errorf("Service IPs changed by the recovery:\nbefore %v\nafter  %v", before, after)
	}

	// An old member returns with its old data.
	old := dead[0]
	if err := l.Revive(old); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(survivor.Dir, "edged.log")
	if err := wait.Until(30*time.Second, survivor.ID+" refuses "+old.ID, func() (bool, string) {
		b, err := os.ReadFile(log)
		return err == nil && strings.Contains(string(b), "belongs to another raft group"), ""
	}); err != nil {
		t.Fatalf("%v\n%s", err, l.LogTails(3000))
	}
	st, err := l.Status(survivor)
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, m := range st.Members {
		members = append(members, m.ID)
	}
	if !slices.Equal(members, []string{survivor.ID}) || st.Leader != survivor.ID {
		t.Errorf("after %s returned: members %v, leader %q; want %s alone", old.ID, members, st.Leader, survivor.ID)
	}
	if len(st.Leases) != len(vips) {
		t.Errorf("after %s returned: %s holds %d leases, want all %d", old.ID, survivor.ID, len(st.Leases), len(vips))
	}
	if ost, err := l.Status(old); err == nil && len(ost.Leases) > 0 {
		t.Errorf("the refused old member %s announces %v", old.ID, ost.Leases)
	}
	for _, ip := range vips {
		if h := l.Holder(ip); h != survivor {
			t.Errorf("%s held by %v after %s returned, want %s", ip, h, old.ID, survivor.ID)
		}
	}
}

// ingressIPs maps every lab Service to its ingress IPs.
func ingressIPs(t *testing.T, l *Lab) map[string]string {
	t.Helper()
	list, err := l.Kube().CoreV1().Services(l.Namespace()).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		out[s.Name] = strings.Join(ips, ",")
	}
	return out
}
