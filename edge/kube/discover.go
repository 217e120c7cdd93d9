package kube

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// metallbResources are the metallb.io/v1beta1 resources the apiserver
// serves, subresources as "ipaddresspools/status".
type metallbResources map[string]bool

// The resources the status writers need.
const (
	resL2Status   = "servicel2statuses"
	resPoolStatus = "ipaddresspools/status"
)

// discoverMetalLB asks the apiserver's discovery endpoint which
// metallb.io/v1beta1 resources it serves: none (and no error) when
// MetalLB's CRDs are not installed. Discovery is open to every
// authenticated user (system:discovery), so it needs no RBAC of edged's.
func (c *Client) discoverMetalLB(ctx context.Context) (metallbResources, error) {
	path := "/apis/" + ServiceL2Statuses.Group + "/" + ServiceL2Statuses.Version
	b, err := c.core.Get().AbsPath(path).SetHeader("Accept", "application/json").DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return metallbResources{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", path, err)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("discover %s: %w", path, err)
	}
	out := metallbResources{}
	for _, r := range list.APIResources {
		out[r.Name] = true
	}
	return out, nil
}
