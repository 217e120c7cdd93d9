package kube

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/goldentooth/edged/test/kubetest"
)

// asEdged starts an apiserver and returns a Client bound to edged's RBAC
// role, an admin client and a fresh namespace.
func asEdged(t *testing.T) (*kubetest.Server, *Client, kubernetes.Interface, string) {
	t.Helper()
	srv := kubetest.Start(t)
	c := clientFor(srv.BindClusterRole(t, kubetest.Edged, kubetest.EdgedRole(t)))
	return srv, c, srv.Client(t), srv.Namespace(t)
}

// TestClientEventSink writes, patches and updates an Event through the
// sink the recorders use, as edged's RBAC user, and reads it back as admin.
func TestClientEventSink(t *testing.T) {
	srv, c, admin, ns := asEdged(t)
	sink := c.EventSink()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: ns, Name: "web", APIVersion: "v1"},
		Reason:         ReasonFailed, Message: "no address", Type: corev1.EventTypeWarning, Count: 1,
		Source: corev1.EventSource{Component: "edged"},
	}
	got, err := sink.Create(ev)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got.Namespace != ns || got.Reason != ReasonFailed {
		t.Fatalf("create returned %s/%s reason %q", got.Namespace, got.Name, got.Reason)
	}
	if _, err := sink.Patch(got, []byte(`{"count":2,"message":"still no address"}`)); err != nil {
		t.Fatalf("patch: %v", err)
	}
	read, err := admin.CoreV1().Events(ns).Get(context.Background(), "web.1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if read.Count != 2 || read.Message != "still no address" {
		t.Errorf("after patch: count %d message %q, want 2 %q", read.Count, read.Message, "still no address")
	}
	// The recorder never updates (configs/rbac.yaml grants create and
	// patch); Update is there for the interface, checked as admin.
	read.Count = 3
	if _, err := clientFor(srv.Config(kubetest.Admin)).EventSink().Update(read); err != nil {
		t.Fatalf("update: %v", err)
	}
	if read, err = admin.CoreV1().Events(ns).Get(context.Background(), "web.1", metav1.GetOptions{}); err != nil || read.Count != 3 {
		t.Errorf("after update: count %d err %v, want 3", read.Count, err)
	}
	// An Event into a namespace that does not exist fails (the recorder
	// logs and drops it; nothing else is affected).
	bad := ev.DeepCopy()
	bad.Namespace = "no-such-namespace"
	if _, err := sink.Create(bad); err == nil {
		t.Error("create in a missing namespace: no error")
	}
}

// TestBinaryLeavesOutClientset keeps client-go's generated Clientset and
// informer factory out of the daemon: they link every Kubernetes API group
// (twice the binary, ~20 MB more resident; docs/operate.md "Footprint").
func TestBinaryLeavesOutClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/goldentooth/edged/cmd/edged").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	apiGroups := 0
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "k8s.io/client-go/kubernetes", pkg == "k8s.io/client-go/informers",
			strings.HasPrefix(pkg, "k8s.io/client-go/kubernetes/"), strings.HasPrefix(pkg, "k8s.io/client-go/applyconfigurations"):
			t.Errorf("cmd/edged links %s", pkg)
		case strings.HasPrefix(pkg, "k8s.io/api/"):
			apiGroups++
		}
	}
	if apiGroups > 2 {
		t.Errorf("cmd/edged links %d k8s.io/api packages, want core/v1 and discovery/v1 only", apiGroups)
	}
}

// TestTLSSecrets: the watch starts on the first Get, holds only
// kubernetes.io/tls Secrets (trimmed), and reports a rotation at once; it
// runs as edged's RBAC user.
func TestTLSSecrets(t *testing.T) {
	_, c, admin, ns := asEdged(t)
	bg := context.Background()
	mk := func(name string, typ corev1.SecretType, crt string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
			Type: typ,
			Data: map[string][]byte{corev1.TLSCertKey: []byte(crt), corev1.TLSPrivateKeyKey: []byte("key")},
		}
	}
	if _, err := admin.CoreV1().Secrets(ns).Create(bg, mk("web-tls", corev1.SecretTypeTLS, "v1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Secrets(ns).Create(bg, mk("opaque", corev1.SecretTypeOpaque, "x"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	changes := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(bg)
	s := NewTLSSecrets(ctx, c, 0, func() { changes <- struct{}{} })
	t.Cleanup(func() { cancel(); s.Wait() })

	get := func(name string) (*corev1.Secret, error) {
		gctx, gcancel := context.WithTimeout(bg, 10*time.Second)
		defer gcancel()
		return s.Get(gctx, ns, name)
	}
	sec, err := get("web-tls")
	if err != nil {
		t.Fatalf("get web-tls: %v", err)
	}
	if string(sec.Data[corev1.TLSCertKey]) != "v1" || sec.Annotations != nil {
		t.Errorf("web-tls: cert %q annotations %v, want v1 and none", sec.Data[corev1.TLSCertKey], sec.Annotations)
	}
	if _, err := get("opaque"); !apierrors.IsNotFound(err) {
		t.Errorf("opaque Secret: err %v, want not found (only kubernetes.io/tls is watched)", err)
	}
	for len(changes) > 0 {
		<-changes
	}
	sec = sec.DeepCopy()
	sec.Data[corev1.TLSCertKey] = []byte("v2")
	start := time.Now()
	if _, err := admin.CoreV1().Secrets(ns).Update(bg, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10 s of the rotation")
	}
	if got, err := get("web-tls"); err != nil || string(got.Data[corev1.TLSCertKey]) != "v2" {
		t.Fatalf("after rotation: %v %v, want v2", got, err)
	}
	t.Logf("rotation seen %v after the update", time.Since(start).Round(time.Millisecond))
}
