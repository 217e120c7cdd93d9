package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/edge/lbconfig"
	"github.com/goldentooth/edged/lbpool"
)

// Event reasons written on Services.
const (
	ReasonAllocated   = "IPAllocated"
	ReasonFailed      = "AllocationFailed"
	ReasonReleased    = "IPReleased"
	ReasonBadConfig   = "InvalidConfiguration"
	ReasonNotAdopting = "AdoptionFailed"
)

// sync brings one Service in line with the Store. Only the leader acts.
func (c *Controller) sync(ctx context.Context, name cache.ObjectName) error {
	if !c.store.IsLeader() {
		return nil
	}
	epoch := c.store.FreeEpoch() // before any attempt: see retryWaiting
	key := name.String()         // the raft state's Service key
	svc, err := c.cache.Services.Services(name.Namespace).Get(name.Name)
	if isNotFound(err) {
		c.unwait(name)
		return c.release(ctx, key, nil)
	}
	if err != nil {
		return err
	}
	if !Handled(svc, c.opts.Class) {
		c.unwait(name)
		return c.release(ctx, key, svc)
	}
	req, err := BuildRequest(svc)
	if err != nil {
		c.recorder.Event(svc, corev1.EventTypeWarning, ReasonBadConfig, err.Error())
		return nil // nothing changes until the Service is edited
	}
	old, had := c.store.Lookup(key)
	if !had && len(req.IPs) == 0 {
		// Adopt an address MetalLB (or an earlier edged) wrote: never move it.
		if ips := statusIPs(svc); len(ips) > 0 {
			req.IPs = ips
			if _, err := c.store.Allocate(ctx, req); err != nil {
				c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonNotAdopting,
					"existing ingress %v kept but not adopted: %v", ips, err)
				c.wait(name, epoch)
				return nil
			}
		}
	}
	alloc, err := c.store.Allocate(ctx, req)
	if err != nil {
		if errors.Is(err, lbpool.ErrBadRequest) || isAllocErr(err) {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonFailed, "Failed to allocate IP for %q: %v", key, err)
			c.log.Debug("allocation failed", "service", key, "err", err)
			c.wait(name, epoch)
			return nil
		}
		return fmt.Errorf("allocate %s: %w", key, err)
	}
	if len(alloc.IPs) < len(req.Families) {
		// PreferDualStack got fewer families than asked: retried, like a
		// waiting Service, when an address frees or the pools change.
		c.wait(name, epoch)
	} else {
		c.unwait(name)
	}
	if err := c.writeStatus(ctx, svc, alloc); err != nil {
		return err
	}
	if !had || !slices.Equal(old.IPs, alloc.IPs) {
		c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonAllocated, "Assigned IP %v from pool %s", alloc.IPs, alloc.Pool)
		c.log.Info("allocated", "service", key, "ip", alloc.IPs, "pool", alloc.Pool)
	}
	return nil
}

func isAllocErr(err error) bool {
	for _, e := range []error{lbpool.ErrPoolExhausted, lbpool.ErrUnknownPool, lbpool.ErrNotInPool, lbpool.ErrInUse, lbpool.ErrNotEligible} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// release frees key's addresses and, if svc still exists, removes the
// ingress IPs and annotation edged wrote.
func (c *Controller) release(ctx context.Context, key string, svc *corev1.Service) error {
	if lbpool.IsStatic(key) { // a static VIP's, the appliance's own: never a Service's
		return nil
	}
	alloc, had := c.store.Lookup(key)
	if !had {
		return nil
	}
	if err := c.store.Release(ctx, key); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	c.log.Info("released", "service", key, "ip", alloc.IPs)
	if svc == nil {
		return nil
	}
	c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonReleased, "Released IP %v", alloc.IPs)
	if len(svc.Status.LoadBalancer.Ingress) > 0 {
		cp := svc.DeepCopy()
		cp.Status.LoadBalancer.Ingress = nil
		if err := c.client.UpdateServiceStatus(ctx, cp); err != nil && !isNotFound(err) {
			return fmt.Errorf("clear status of %s: %w", key, err)
		}
	}
	if !poolAnnotated(svc, nil) {
		return c.patchPool(ctx, svc, nil)
	}
	return nil
}

// writeStatus sets the ingress and the pool annotation when they differ.
func (c *Controller) writeStatus(ctx context.Context, svc *corev1.Service, alloc lbpool.Allocation) error {
	want := ingress(alloc.IPs, lbconfig.IPMode(svc, c.opts.IPMode))
	if !sameIngress(svc.Status.LoadBalancer.Ingress, want) {
		cp := svc.DeepCopy()
		cp.Status.LoadBalancer.Ingress = want
		if err := c.client.UpdateServiceStatus(ctx, cp); err != nil {
			return fmt.Errorf("update status of %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	if !poolAnnotated(svc, &alloc.Pool) {
		return c.patchPool(ctx, svc, &alloc.Pool)
	}
	return nil
}

// patchPool sets (or with nil removes) both spellings of the pool
// annotation in one merge patch, leaving every other annotation untouched.
func (c *Controller) patchPool(ctx context.Context, svc *corev1.Service, pool *string) error {
	anns := map[string]any{}
	for _, k := range poolAnnotations {
		anns[k] = pool
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": anns}})
	err := c.client.PatchService(ctx, svc.Namespace, svc.Name, patch)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("annotate %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

func ingress(ips []netip.Addr, mode corev1.LoadBalancerIPMode) []corev1.LoadBalancerIngress {
	out := make([]corev1.LoadBalancerIngress, 0, len(ips))
	for _, ip := range ips {
		m := mode
		out = append(out, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &m})
	}
	return out
}

func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname || (a[i].IPMode == nil) != (b[i].IPMode == nil) ||
			(a[i].IPMode != nil && *a[i].IPMode != *b[i].IPMode) {
			return false
		}
	}
	return true
}
