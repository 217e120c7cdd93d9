package edgelab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/goldentooth/edged/test/wait"
)

// TestServiceSourceRanges is the Service contract's source-range check through
// the whole appliance: three edged, three HAProxy, a real Service with
// loadBalancerSourceRanges naming the client host's own address. The
// client is served from it and refused from a second address outside the
// ranges, on whichever edge host announces the VIP.
func TestServiceSourceRanges(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test (root, netns, kube-apiserver, haproxy)")
	}
	l := New(t, Options{HAProxy: true})
	outside := netip.MustParseAddr("10.77.0.9") // below the pods (.20+), above the hosts
	if err := l.AddClientAddr(outside); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod, err := l.StartPod("ranged")
	if err != nil {
		t.Fatal(err)
	}
	single := corev1.IPFamilyPolicySingleStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ranged", Namespace: l.Namespace()},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeLoadBalancer,
			Ports:                    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			IPFamilies:               []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:           &single,
			LoadBalancerSourceRanges: []string{l.Client.Addr.String() + "/32"},
		},
	}
	if _, err := l.Kube().CoreV1().Services(l.Namespace()).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.SetEndpoints(ctx, "ranged", pod); err != nil {
		t.Fatal(err)
	}
	var vip netip.Addr
	wait.For(t, allocTimeout, "ranged ingress IP", func() (bool, string) {
		s, err := l.Kube().CoreV1().Services(l.Namespace()).Get(ctx, "ranged", metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, fmt.Sprint(err)
		}
		vip, err = netip.ParseAddr(s.Status.LoadBalancer.Ingress[0].IP)
		return err == nil, fmt.Sprint(err)
	})
	url := "http://" + VIPAddr(vip, 80) + "/"
	t.Run("inside served, outside refused", func(t *testing.T) {
		wait.For(t, healthyTimeout, "client inside the ranges served", func() (bool, string) {
			body, err := getBody(l.HTTPVia(l.Client), url)
			return err == nil && body == pod.Name, fmt.Sprint(body, err)
		})
		for i := range 5 {
			if body, err := getBody(l.HTTPFrom(outside), url); err == nil {
				t.Fatalf("attempt %d: client %s outside the ranges was served %q", i+1, outside, body)
			}
			time.Sleep(100 * time.Millisecond) // five separate connections, not a retry loop
		}
		if body, err := getBody(l.HTTPVia(l.Client), url); err != nil || body != pod.Name {
			t.Errorf("client inside after the refusals: %q, %v", body, err)
		}
	})
}

// getBody fetches url and returns the body of a 200 answer.
func getBody(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), nil
}
