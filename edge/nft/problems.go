package nft

// Kinds of objects a Problem is about (the values edge/proxy's EventSink
// takes).
const (
	KindService = "Service"
	KindNode    = "Node"
)

// Event reasons the part raises; each names UDP/SCTP forwarding, so they
// never read as the HAProxy part's reasons about the same object.
const (
	// ReasonInvalidAnnotation: edge.goldentooth.net/backend is neither
	// endpoints nor nodeport; the Service's UDP/SCTP ports are not forwarded.
	ReasonInvalidAnnotation = "ForwardingInvalidAnnotation"
	// ReasonInvalidPort: a UDP/SCTP port out of 1..65535 is not forwarded.
	ReasonInvalidPort = "ForwardingInvalidPort"
	// ReasonPortNotAllocated: a UDP/SCTP port the allocation did not grant,
	// or that another Service forwards, is not forwarded.
	ReasonPortNotAllocated = "ForwardingPortNotAllocated"
	// ReasonNoNodePort: nodeport backends, but the port has no NodePort.
	ReasonNoNodePort = "ForwardingNoNodePort"
	// ReasonInvalidEndpoint: an endpoint or Node address was refused and
	// left out.
	ReasonInvalidEndpoint = "ForwardingInvalidEndpoint"
	// ReasonTooManyEndpoints: a port was cut to MaxEndpoints endpoints.
	ReasonTooManyEndpoints = "ForwardingTooManyEndpoints"
	// ReasonInvalidSourceRange: loadBalancerSourceRanges entries that do
	// not parse were left out (fewer sources admitted, never more).
	ReasonInvalidSourceRange = "ForwardingInvalidSourceRange"
)

// Problem is something wrong with one Kubernetes object; the part raises
// an Event (Reason) on it. Build reports every Problem and keeps going.
type Problem struct {
	// Kind is KindService or KindNode.
	Kind string
	// Key is "namespace/name" for a Service, the name for a Node.
	Key string
	// Reason is one of the Reason constants.
	Reason string
	// Err says what was wrong and what was left out; untrusted values in
	// it are quoted.
	Err error
}

// Error implements error.
func (p Problem) Error() string { return p.Kind + " " + p.Key + ": " + p.Err.Error() }

// Unwrap returns the cause.
func (p Problem) Unwrap() error { return p.Err }
