package edgelab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/goldentooth/edged/edge/kube"
	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/test/wait"
)

// kubeReportTimeout bounds the wait for the announcer to show in
// Kubernetes after it changed in raft (measured: well under a second).
const kubeReportTimeout = 30 * time.Second

// TestAnnouncerInKubernetes is issue 17's "done when": three real edged
// with MetalLB's CRDs installed; a Service's announcer shows in Kubernetes
// (annotation, nodeAssigned Event, one ServiceL2Status in MetalLB's
// schema); SIGKILL + link down of that announcer (a follower) makes the
// leader write the new host everywhere: a nodeAssigned Event naming it,
// the annotation, and exactly one ServiceL2Status, the crashed host's
// gone although the crashed host cannot delete it.
func TestAnnouncerInKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver)")
	}
	l := New(t, Options{MetalLBCRDs: true})
	vips, err := l.CreateServices(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	ip, owner := followerVIP(t, l, vips)
	name := fmt.Sprintf("web-%d", slices.Index(vips, ip)) // CreateServices' names
	t.Cleanup(func() { restore(t, l, owner) })
	if err := waitReported(l, name, ip, owner.ID, time.Now().Add(kubeReportTimeout)); err != nil {
		t.Fatalf("before the crash: %v", err)
	}

	at, err := l.Crash(owner)
	if err != nil {
		t.Fatal(err)
	}
	var newOwner *Edge
	wait.For(t, moveTimeout, ip.String()+" assigned to another host", func() (bool, string) {
		o, err := l.Owner(ip)
		if err != nil {
			return false, err.Error()
		}
		newOwner = o
		return o != owner, "still " + o.ID
	})
	if err := waitReported(l, name, ip, newOwner.ID, at.Add(kubeReportTimeout)); err != nil {
		t.Fatalf("after %s crashed: %v\n%s", owner.ID, err, l.LogTails(3000))
	}
	t.Logf("%s (%s): %s crashed, %s announces; Kubernetes says so %v after the crash",
		name, ip, owner.ID, newOwner.ID, time.Since(at).Round(time.Millisecond))
	// Once per change of announcer: one Event for each host, from one
	// writer (the leader), none repeated by resyncs or by the Service
	// controller's own writes to the Service.
	for _, h := range []*Edge{owner, newOwner} {
		evs, err := nodeAssignedEvents(l, name, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := eventCount(evs); n != 1 {
			t.Errorf("%d nodeAssigned Events name %s, want exactly 1: %+v", n, h.ID, evs)
		}
	}
}

// waitReported waits until Kubernetes names host as the announcer of
// Service name (ip) everywhere edged writes it: the annotation, exactly one
// ServiceL2Status (labels and status), and a nodeAssigned Event.
func waitReported(l *Lab, name string, ip netip.Addr, host string, deadline time.Time) error {
	return wait.UntilEvery(time.Until(deadline), 50*time.Millisecond, name+" reported as announced by "+host, func() (bool, string) {
		ctx := context.Background()
		svc, err := l.Kube().CoreV1().Services(l.Namespace()).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if got := svc.Annotations[lbconfig.AnnAnnouncingNode]; got != host {
			return false, fmt.Sprintf("annotation %s=%q", lbconfig.AnnAnnouncingNode, got)
		}
		list, err := l.Dynamic().Resource(kube.ServiceL2Statuses).Namespace(MetalLBNamespace).List(ctx,
			metav1.ListOptions{LabelSelector: kube.LabelServiceName + "=" + name + "," + kube.LabelServiceNamespace + "=" + l.Namespace()})
		if err != nil {
			return false, err.Error()
		}
		var l2 []string
		for _, u := range list.Items {
			l2 = append(l2, l2Summary(&u))
		}
		want := fmt.Sprintf("%s node=%s status=%s %s/%s [eth0]", "l2-", host, host, l.Namespace(), name)
		if len(l2) != 1 || l2[0] != want {
			return false, fmt.Sprintf("ServiceL2Statuses %q, want [%q]", l2, want)
		}
		evs, err := nodeAssignedEvents(l, name, host)
		if err != nil {
			return false, err.Error()
		}
		if eventCount(evs) == 0 {
			return false, "no nodeAssigned Event naming " + host
		}
		if !strings.Contains(evs[len(evs)-1].Message, ip.String()) {
			return false, "the nodeAssigned Event does not name " + ip.String()
		}
		return true, ""
	})
}

// l2Summary is "l2- node=<label> status=<node> <ns>/<name> [<interfaces>]".
func l2Summary(u *unstructured.Unstructured) string {
	node, _, _ := unstructured.NestedString(u.Object, "status", "node")
	ns, _, _ := unstructured.NestedString(u.Object, "status", "serviceNamespace")
	svc, _, _ := unstructured.NestedString(u.Object, "status", "serviceName")
	ifs, _, _ := unstructured.NestedSlice(u.Object, "status", "interfaces")
	var names []string
	for _, i := range ifs {
		m, _ := i.(map[string]any)
		n, _ := m["name"].(string)
		names = append(names, n)
	}
	prefix, _, _ := strings.Cut(u.GetName(), "-")
	return fmt.Sprintf("%s- node=%s status=%s %s/%s [%s]", prefix, u.GetLabels()[kube.LabelAnnounceNode], node, ns, svc, strings.Join(names, ","))
}

// nodeAssignedEvents lists the Normal nodeAssigned Events on Service name
// that name host.
func nodeAssignedEvents(l *Lab, name, host string) ([]corev1.Event, error) {
	evs, err := l.Kube().CoreV1().Events(l.Namespace()).List(context.Background(),
		metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + kube.ReasonNodeAssigned})
	if err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, ev := range evs.Items {
		if ev.Type == corev1.EventTypeNormal && strings.Contains(ev.Message, fmt.Sprintf("node %q", host)) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// eventCount counts evs, the repeats the recorder folded into one included.
func eventCount(evs []corev1.Event) int {
	n := 0
	for _, ev := range evs {
		n += int(max(ev.Count, 1))
	}
	return n
}
