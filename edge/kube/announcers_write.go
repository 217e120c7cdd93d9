package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/goldentooth/edged/edge/lbconfig"
)

// sync brings one Service's annotation, Event and ServiceL2Statuses in
// line with the leader's last look at the state.
func (a *Announcers) sync(ctx context.Context, name cache.ObjectName) error {
	if !a.state.IsLeader() {
		return nil
	}
	key := name.Namespace + "/" + name.Name
	a.mu.Lock()
	an := a.cur[key] // zero (no IPs) when the state allocated nothing
	a.mu.Unlock()
	svc, err := a.cache.Services.Services(name.Namespace).Get(name.Name)
	if isNotFound(err) {
		a.mu.Lock()
		delete(a.pending, key)
		a.mu.Unlock()
		return a.syncL2(ctx, name, nil)
	}
	if err != nil {
		return err
	}
	if err := a.annotate(ctx, svc, an.IPs); err != nil {
		return err
	}
	var want []l2Want
	for _, h := range announcers(an.IPs) {
		want = append(want, l2Want{Node: h, Interfaces: a.interfaces(an, h)})
	}
	return a.syncL2(ctx, name, want)
}

// annotate sets the announcing-node annotation to the announcers of as
// (removes it for none) and, when they changed to someone, writes the
// nodeAssigned Events: after the patch, so a retry or a new leader that
// finds the annotation current does not repeat them.
func (a *Announcers) annotate(ctx context.Context, svc *corev1.Service, as []announcement) error {
	key := svc.Namespace + "/" + svc.Name
	want := announcingValue(as)
	have := svc.Annotations[lbconfig.AnnAnnouncingNode]
	a.mu.Lock()
	if p, ok := a.pending[key]; ok {
		if olderThan(svc.ResourceVersion, p.After) { // our patch is not cached yet
			have = p.Value
		} else {
			delete(a.pending, key)
		}
	}
	a.mu.Unlock()
	if have == want {
		return nil
	}
	var value any // nil removes the key
	if want != "" {
		value = want
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{lbconfig.AnnAnnouncingNode: value}}})
	out, err := a.client.patchService(ctx, svc.Namespace, svc.Name, patch)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("annotate %s announcer: %w", key, err)
	}
	a.mu.Lock()
	a.pending[key] = annotated{After: out.ResourceVersion, Value: want}
	a.mu.Unlock()
	for _, msg := range nodeAssignedMessages(as) {
		a.recorder.Event(svc, corev1.EventTypeNormal, ReasonNodeAssigned, msg)
	}
	a.log.Info("announcer", "service", key, "node", want)
	return nil
}

// olderThan reports whether resourceVersion rv is older than after. The
// apiserver's versions are etcd revisions, integers that only grow (what
// client-go's MutationCache relies on too); one that does not parse is
// taken as current, so the cache is trusted.
func olderThan(rv, after string) bool {
	a, err1 := strconv.ParseUint(rv, 10, 64)
	b, err2 := strconv.ParseUint(after, 10, 64)
	return err1 == nil && err2 == nil && a < b
}

// interfaces are the interfaces a ServiceL2Status names for host: those
// the advertisements of the Service's pool that allow host name, sorted;
// none when one of them names none (the host's announce.interfaces apply,
// which only that host knows; MetalLB writes none for "all" too).
func (a *Announcers) interfaces(an announced, host string) []string {
	if a.opts.PoolConfig == nil {
		return nil
	}
	cfg := a.opts.PoolConfig()
	if cfg == nil {
		return nil
	}
	// Another host's announce.interfaces are not known here: nil, every
	// served interface.
	ifs, ok := cfg.PoolInterfacesOf(host, nil, an.Pool, []map[string]string{an.Labels})
	if !ok {
		return nil
	}
	slices.Sort(ifs)
	return ifs
}

// l2ServiceIndex indexes ServiceL2Statuses by the Service their labels
// name ("namespace/name").
const l2ServiceIndex = "service"

// l2Cache is the informer on edged's ServiceL2Status objects.
type l2Cache struct {
	inf cache.SharedIndexInformer
	res dynamic.ResourceInterface
}

// newL2Cache watches the objects labelled managed-by edged in namespace;
// onChange gets the Service key of every add, change (not resync) and
// delete.
func newL2Cache(dyn dynamic.Interface, namespace string, resync time.Duration, onChange func(key string)) *l2Cache {
	sel := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy}).String()
	inf := dynamicInformer(dyn, ServiceL2Statuses, namespace, resync, sel)
	_ = inf.AddIndexers(cache.Indexers{l2ServiceIndex: func(obj any) ([]string, error) {
		return []string{l2Key(obj)}, nil
	}})
	_, _ = inf.AddEventHandler(changeHandler(func(obj any) { onChange(l2Key(obj)) }))
	return &l2Cache{inf: inf, res: dyn.Resource(ServiceL2Statuses).Namespace(namespace)}
}

// l2Key is the Service an object's labels name.
func l2Key(obj any) string {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return ""
	}
	l := u.GetLabels()
	return l[LabelServiceNamespace] + "/" + l[LabelServiceName]
}

// syncL2 makes the Service's ServiceL2Statuses say want (planL2): stale
// objects deleted first, so no tool sees two announcers, then the wanted
// ones created and their status written.
func (a *Announcers) syncL2(ctx context.Context, name cache.ObjectName, want []l2Want) error {
	l2 := a.l2.Load()
	if l2 == nil {
		return nil
	}
	objs, err := l2.inf.GetIndexer().ByIndex(l2ServiceIndex, name.Namespace+"/"+name.Name)
	if err != nil {
		return err
	}
	var have []l2Have
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			have = append(have, l2HaveOf(u))
		}
	}
	plan := planL2(name.Namespace, name.Name, want, have)
	for _, n := range plan.Delete {
		if err := l2.res.Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ServiceL2Status %s/%s of %s: %w", a.opts.Namespace, n, name, err)
		}
	}
	for _, w := range plan.Write {
		if err := a.writeL2(ctx, l2, name, w); err != nil {
			return err
		}
	}
	return nil
}

func (a *Announcers) writeL2(ctx context.Context, l2 *l2Cache, svc cache.ObjectName, w l2Write) error {
	if w.Create {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": ServiceL2Statuses.GroupVersion().String(), "kind": "ServiceL2Status",
			"metadata": map[string]any{"name": w.Name, "namespace": a.opts.Namespace},
		}}
		u.SetLabels(l2Labels(svc.Namespace, svc.Name, w.Status.Node))
		if _, err := l2.res.Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ServiceL2Status %s/%s of %s: %w", a.opts.Namespace, w.Name, svc, err)
		}
	}
	patch, _ := json.Marshal(w.Status.patch())
	if _, err := l2.res.Patch(ctx, w.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("write status of ServiceL2Status %s/%s of %s: %w", a.opts.Namespace, w.Name, svc, err)
	}
	return nil
}

// writePools writes the status of MetalLB's IPAddressPool objects whose
// counts in the raft state differ from what the object says.
func (a *Announcers) writePools(ctx context.Context) {
	if a.opts.PoolObjects == nil || a.dyn == nil || !a.poolStatus.Load() {
		return
	}
	a.mu.Lock()
	stats := a.stats
	a.mu.Unlock()
	want := make(map[string]poolCounters, len(stats))
	for _, s := range stats {
		want[s.Pool] = countersOf(s)
	}
	for _, u := range a.opts.PoolObjects() {
		w, ok := want[u.GetName()] // absent: not in force (invalid, or not merged yet)
		if !ok || countersOfObject(u) == w {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{
			"assignedIPv4": w.AssignedIPv4, "assignedIPv6": w.AssignedIPv6,
			"availableIPv4": w.AvailableIPv4, "availableIPv6": w.AvailableIPv6,
		}})
		res := a.dyn.Resource(IPAddressPools).Namespace(u.GetNamespace())
		if _, err := res.Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil && !apierrors.IsNotFound(err) {
			a.logErr("pool status", err, "pool", u.GetName())
		}
	}
}

// countersOfObject reads an IPAddressPool's status (untrusted: a missing or
// mistyped field reads as -1, which no count equals).
func countersOfObject(u *unstructured.Unstructured) poolCounters {
	get := func(f string) int64 {
		n, ok, err := unstructured.NestedInt64(u.Object, "status", f)
		if !ok || err != nil {
			return -1
		}
		return n
	}
	return poolCounters{AssignedIPv4: get("assignedIPv4"), AssignedIPv6: get("assignedIPv6"),
		AvailableIPv4: get("availableIPv4"), AvailableIPv6: get("availableIPv6")}
}
