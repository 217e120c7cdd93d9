// Package config loads and validates edged.yaml. It owns the file's
// structure, its defaults and every check that can be made without touching
// the system; an error always names the file, the line and the field.
// It is also the one home of the L2Advertisement rules (advertise.go):
// which pools an advertisement announces, on which interfaces and from
// which hosts, as pure methods on Config.
//
// Pools and L2 advertisements use MetalLB's IPAddressPool and L2Advertisement
// vocabulary, and MetalLB's own manifests can be merged in through
// metallbManifests.
package config

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/goldentooth/edged/edge/metricsrv"
	"github.com/goldentooth/edged/lbpool"
)

// DefaultPath is where edged looks for its config without --config.
const DefaultPath = "/etc/edged/edged.yaml"

// Config is the whole of edged.yaml after defaults and validation.
type Config struct {
	Node             Node              `yaml:"node"`
	Raft             Raft              `yaml:"raft"`
	Kubernetes       Kubernetes        `yaml:"kubernetes"`
	Pools            []Pool            `yaml:"pools"`
	L2Advertisements []L2Advertisement `yaml:"l2Advertisements"`
	MetallbManifests []string          `yaml:"metallbManifests"`
	StaticVIPs       []StaticVIP       `yaml:"staticVIPs"`
	Announce         Announce          `yaml:"announce"`
	HAProxy          HAProxy           `yaml:"haproxy"`
	Health           Health            `yaml:"health"`
	Metrics          Metrics           `yaml:"metrics"`
	Log              Log               `yaml:"log"`

	// Path is the file the config was read from.
	Path string `yaml:"-"`
	// LBPools are Pools (and the manifests' pools) parsed for the allocator,
	// in the same order, followed by one pool per StaticVIPs entry
	// (lbpool.StaticPool, in config order).
	LBPools []lbpool.Pool `yaml:"-"`

	// root, pools and adverts remember where each pool and advertisement
	// came from, so WithObjects reports clashes against the right line.
	root    *yaml.Node
	pools   []source
	adverts []source
}

// Node identifies this edge host and where it keeps state.
type Node struct {
	// Name is this host's raft ID and announcer name; default: the hostname.
	Name        string `yaml:"name"`
	DataDir     string `yaml:"dataDir"`
	AdminSocket string `yaml:"adminSocket"`
}

// Peer is one initial raft member.
type Peer struct {
	ID      string `yaml:"id"`
	Address string `yaml:"address"`
}

// TLS names PEM files for mutual TLS between edge hosts.
type TLS struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	CAFile   string `yaml:"caFile"`
}

// Raft configures the raft group and its timings (see docs/raft.md).
type Raft struct {
	BindAddress       string        `yaml:"bindAddress"`
	AdvertiseAddress  string        `yaml:"advertiseAddress"`
	Peers             []Peer        `yaml:"peers"`
	TLS               TLS           `yaml:"tls"`
	InsecurePlaintext bool          `yaml:"insecurePlaintext"`
	HeartbeatTimeout  time.Duration `yaml:"heartbeatTimeout"`
	ElectionTimeout   time.Duration `yaml:"electionTimeout"`
	LeaseDuration     time.Duration `yaml:"leaseDuration"`
	ClockDriftMargin  time.Duration `yaml:"clockDriftMargin"`
	SnapshotInterval  time.Duration `yaml:"snapshotInterval"`
	SnapshotThreshold uint64        `yaml:"snapshotThreshold"`
	LeaveOnShutdown   bool          `yaml:"leaveOnShutdown"`
}

// Kubernetes configures the Service controller.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster config.
	Kubeconfig        string `yaml:"kubeconfig"`
	LoadBalancerClass string `yaml:"loadBalancerClass"`
	// IPMode is written into status.loadBalancer.ingress[].ipMode.
	IPMode           string        `yaml:"ipMode"`
	MetallbCRDs      bool          `yaml:"metallbCRDs"`
	MetallbNamespace string        `yaml:"metallbNamespace"`
	Resync           time.Duration `yaml:"resync"`
	// QPS and Burst bound edged's requests to the apiserver (client-go's
	// token bucket; its own default of 5/10 makes filling the reference
	// pool take minutes).
	QPS   float32 `yaml:"qps"`
	Burst int     `yaml:"burst"`
}

// Pool is a MetalLB IPAddressPool spec plus its name.
type Pool struct {
	Name              string             `yaml:"name"`
	Addresses         []string           `yaml:"addresses"`
	AutoAssign        *bool              `yaml:"autoAssign"`
	AvoidBuggyIPs     bool               `yaml:"avoidBuggyIPs"`
	ServiceAllocation *ServiceAllocation `yaml:"serviceAllocation"`
	// Labels let advertisements select pools (ipAddressPoolSelectors).
	Labels map[string]string `yaml:"labels"`
}

// ServiceAllocation is MetalLB's spec.serviceAllocation.
type ServiceAllocation struct {
	Priority           *int            `yaml:"priority"`
	Namespaces         []string        `yaml:"namespaces"`
	NamespaceSelectors []LabelSelector `yaml:"namespaceSelectors"`
	ServiceSelectors   []LabelSelector `yaml:"serviceSelectors"`
}

// LabelSelector is a Kubernetes label selector.
type LabelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []Requirement     `yaml:"matchExpressions"`
}

// Requirement is one matchExpressions entry.
type Requirement struct {
	Key      string   `yaml:"key"`
	Operator string   `yaml:"operator"`
	Values   []string `yaml:"values"`
}

// L2Advertisement is MetalLB's L2Advertisement: which pools are announced
// on which interfaces, by which edge hosts.
type L2Advertisement struct {
	Name                   string          `yaml:"name"`
	IPAddressPools         []string        `yaml:"ipAddressPools"`
	IPAddressPoolSelectors []LabelSelector `yaml:"ipAddressPoolSelectors"`
	Interfaces             []string        `yaml:"interfaces"`
	// ServiceSelectors limit the advertisement to the IPs of Services whose
	// labels one of them matches (MetalLB 0.16); empty: every Service.
	ServiceSelectors []LabelSelector `yaml:"serviceSelectors"`
	// Nodes are the edge hosts (node.name) allowed to announce; empty: all.
	Nodes []string `yaml:"nodes"`
}

// Announce tunes ARP/NDP announcements.
type Announce struct {
	GARPCount       int           `yaml:"garpCount"`
	GARPInterval    time.Duration `yaml:"garpInterval"`
	RefreshInterval time.Duration `yaml:"refreshInterval"`
	// HandoverLinger keeps an IP on lo (no longer answering ARP/NDP) this
	// long after this host gave it up, so packets from clients whose
	// neighbour caches still point here are served, not dropped.
	HandoverLinger time.Duration `yaml:"handoverLinger"`
	// Interfaces announce pools whose advertisement names none.
	Interfaces []string `yaml:"interfaces"`
}

// HAProxy configures the generated HAProxy file and how it is applied.
type HAProxy struct {
	ConfigFile   string        `yaml:"configFile"`
	OperatorFile string        `yaml:"operatorFile"`
	MasterSocket string        `yaml:"masterSocket"`
	StatsSocket  string        `yaml:"statsSocket"`
	Binary       string        `yaml:"binary"`
	CertDir      string        `yaml:"certDir"`
	ServerSlots  int           `yaml:"serverSlots"`
	Coalesce     time.Duration `yaml:"coalesce"`
	BackendMode  string        `yaml:"backendMode"`
	Stats        Stats         `yaml:"stats"`
	Prometheus   Prometheus    `yaml:"prometheus"`
	// Timeouts are every Service's HAProxy timeouts unless its annotations
	// say otherwise (see docs/service-contract.md).
	Timeouts Timeouts `yaml:"timeouts"`
}

// Timeouts are HAProxy's connection timeouts (haproxy.Timeouts).
type Timeouts struct {
	Connect time.Duration `yaml:"connect"`
	Client  time.Duration `yaml:"client"`
	Server  time.Duration `yaml:"server"`
	Tunnel  time.Duration `yaml:"tunnel"`
}

// Stats is HAProxy's stats page.
type Stats struct {
	Bind     string        `yaml:"bind"`
	URI      string        `yaml:"uri"`
	User     string        `yaml:"user"`
	Password string        `yaml:"password"`
	Refresh  time.Duration `yaml:"refresh"`
}

// Prometheus is HAProxy's built-in Prometheus exporter endpoint.
type Prometheus struct {
	Bind string `yaml:"bind"`
}

// Metrics is edged's own Prometheus endpoint.
type Metrics struct {
	Address string     `yaml:"address"`
	TLS     MetricsTLS `yaml:"tls"`
}

// MetricsTLS makes the metrics endpoint HTTPS (empty: plain HTTP). With
// ClientCAFile, only clients presenting a certificate signed by one of its
// CAs are served.
type MetricsTLS struct {
	CertFile     string `yaml:"certFile"`
	KeyFile      string `yaml:"keyFile"`
	ClientCAFile string `yaml:"clientCAFile"`
}

// Files returns the TLS files as the metrics server takes them.
func (t MetricsTLS) Files() metricsrv.TLSFiles {
	return metricsrv.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
}
