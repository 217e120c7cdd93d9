package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Warn records a Warning Event on the Service key ("namespace/name") if
// the cache holds it; other parts (HAProxy) report per-Service problems
// through it.
func (c *Controller) Warn(key, reason, message string) {
	name, err := cache.ParseObjectName(key)
	if err != nil {
		return
	}
	svc, err := c.cache.Services.Services(name.Namespace).Get(name.Name)
	if err != nil {
		return
	}
	c.recorder.Event(svc, corev1.EventTypeWarning, reason, message)
}

// WarnNode records a Warning Event on the Node name if the cache holds it
// (a Node whose addresses the HAProxy part refused).
func (c *Controller) WarnNode(name, reason, message string) {
	n, err := c.cache.Nodes.Get(name)
	if err != nil {
		return
	}
	c.recorder.Event(n, corev1.EventTypeWarning, reason, message)
}
