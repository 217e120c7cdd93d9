// Package lbpool owns LoadBalancer address pools and the allocation of their
// addresses to Services. It is pure and deterministic: no I/O, no clocks, and
// no output that depends on map iteration order, so the raft state machine can
// call it and every replica reaches the same state from the same commands.
//
// Pools are never materialised: memory grows with the number of allocations,
// not with the size of a pool, and finding the lowest free address does not
// scan the pool.
package lbpool

import (
	"errors"
	"net/netip"
)

// Family is an IP address family.
type Family int

// The address families a pool can hold.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Range is an inclusive span of addresses of one family, First <= Last.
type Range struct {
	First netip.Addr
	Last  netip.Addr
}

// Selector matches labels. It is the subset of a Kubernetes LabelSelector that
// MetalLB's serviceAllocation uses: matchLabels and matchExpressions.
type Selector struct {
	MatchLabels      map[string]string
	MatchExpressions []SelectorRequirement
}

// SelectorRequirement is one matchExpressions entry (In, NotIn, Exists,
// DoesNotExist).
type SelectorRequirement struct {
	Key      string
	Operator string
	Values   []string
}

// ServiceAllocation restricts and orders which Services a pool serves, as in
// MetalLB's IPAddressPool spec.serviceAllocation.
type ServiceAllocation struct {
	// Priority orders pools: lower first; nil sorts after every set priority.
	Priority           *int
	Namespaces         []string
	NamespaceSelectors []Selector
	ServiceSelectors   []Selector
}

// Pool is a named set of address ranges with MetalLB's allocation options.
type Pool struct {
	Name          string
	Ranges        []Range
	AutoAssign    bool
	AvoidBuggyIPs bool
	Allocation    *ServiceAllocation
}

// Port is a protocol and port a Service exposes; used by IP sharing rules.
type Port struct {
	Protocol string // "TCP", "UDP" or "SCTP"
	Port     int32
}

// Request asks for addresses for one Service.
type Request struct {
	// Key identifies the Service: "namespace/name".
	Key             string
	Namespace       string
	NamespaceLabels map[string]string
	ServiceLabels   map[string]string
	// Families wanted, in order (single or dual stack). Empty means IPv4.
	Families []Family
	// PreferDualStack is Kubernetes' ipFamilyPolicy PreferDualStack: a
	// wanted family the pool cannot give (it has no range of it, or none
	// free) is left out instead of failing, as long as one family is
	// given. False (also for log entries written before the field existed)
	// requires every family.
	PreferDualStack bool `json:",omitempty"`
	// IPs are specific addresses requested, at most one per family.
	IPs []netip.Addr
	// Pool is a requested pool name; empty lets the allocator choose.
	Pool string
	// SharingKey is MetalLB's allow-shared-ip key; empty means no sharing.
	SharingKey string
	Ports      []Port
	// TrafficPolicyCluster is true for externalTrafficPolicy Cluster.
	TrafficPolicyCluster bool
	// Selector is the Service's pod selector in a canonical string form;
	// two Local-policy Services may share an IP only with equal selectors.
	Selector string
}

// Allocation is the addresses held by one Service.
type Allocation struct {
	Key  string
	Pool string
	IPs  []netip.Addr
	// The sharing facts are kept so later requests can be checked against them.
	SharingKey           string
	Ports                []Port
	TrafficPolicyCluster bool
	Selector             string
	// ServiceLabels are the Service's labels as last requested: an L2
	// advertisement's serviceSelectors are matched against them where the
	// allocation is announced, on every host, also while the apiserver is
	// away. Absent from entries and snapshots written before the field
	// existed (nil until the Service's next sync writes them).
	ServiceLabels map[string]string `json:",omitempty"`
}

// PoolStats counts a pool's addresses (avoidBuggyIPs already applied).
type PoolStats struct {
	Pool    string
	TotalV4 uint64 // saturates at math.MaxUint64 for huge IPv6 pools
	TotalV6 uint64
	InUseV4 uint64
	InUseV6 uint64
}

// Errors returned by the allocator; wrap-tested with errors.Is.
var (
	ErrPoolExhausted = errors.New("no free address in any eligible pool")
	ErrUnknownPool   = errors.New("no such pool")
	ErrNotInPool     = errors.New("address is not in any eligible pool")
	ErrInUse         = errors.New("address is in use by another service")
	ErrNotEligible   = errors.New("pool does not serve this service")
	ErrBadRequest    = errors.New("invalid request")
)
