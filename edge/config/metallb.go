package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// metallbAPIGroup is the API group of MetalLB's CRDs.
const metallbAPIGroup = "metallb.io/"

// manifest is the part of a Kubernetes object edged reads.
type manifest struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   metadata  `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
}

type metadata struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// poolSpec is IPAddressPool.spec.
type poolSpec struct {
	Addresses         []string           `yaml:"addresses"`
	AutoAssign        *bool              `yaml:"autoAssign"`
	AvoidBuggyIPs     bool               `yaml:"avoidBuggyIPs"`
	ServiceAllocation *ServiceAllocation `yaml:"serviceAllocation"`
}

// advertSpec is L2Advertisement.spec.
type advertSpec struct {
	IPAddressPools         []string        `yaml:"ipAddressPools"`
	IPAddressPoolSelectors []LabelSelector `yaml:"ipAddressPoolSelectors"`
	Interfaces             []string        `yaml:"interfaces"`
	NodeSelectors          []LabelSelector `yaml:"nodeSelectors"`
	ServiceSelectors       []LabelSelector `yaml:"serviceSelectors"`
	// PreferredNodeSelectors is accepted only empty (see hostKeys).
	PreferredNodeSelectors []struct{} `yaml:"preferredNodeSelectors"`
}

// hostKeys are L2Advertisement keys that select Kubernetes nodes, which do
// not announce here, with what to write instead.
var hostKeys = []struct{ key, instead string }{
	{"nodeSelectors", "nodeSelectors pick Kubernetes nodes, but edged announces from edge hosts: list them under l2Advertisements[].nodes in edged.yaml instead"},
	{"preferredNodeSelectors", "preferredNodeSelectors prefer Kubernetes nodes, but edged announces from edge hosts and has no preference among them yet: " +
		"drop the key (every eligible host may then be chosen), or restrict the hosts with l2Advertisements[].nodes in edged.yaml"},
}

// mergeManifest reads a multi-document file of MetalLB objects and appends
// its pools and advertisements.
func (l *loaded) mergeManifest(cfgPath, file string, at *yaml.Node) error {
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(cfgPath), path)
	}
	f, err := os.Open(path)
	if err != nil {
		line := 0
		if at != nil {
			line = at.Line
		}
		return &Error{File: cfgPath, Line: line, Field: "metallbManifests", Msg: fmt.Sprintf("cannot read MetalLB manifest %s: %v", path, unwrapPath(err))}
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for i := 0; ; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return &Error{File: path, Line: lineOf(err), Msg: fmt.Sprintf("document %d: malformed YAML: %v", i+1, err)}
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		if err := l.mergeObject(path, doc.Content[0]); err != nil {
			return err
		}
	}
}

func lineOf(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		var n int
		fmt.Sscan(m[1], &n)
		return n
	}
	return 1
}

func (l *loaded) mergeObject(path string, n *yaml.Node) error {
	var m manifest
	if err := n.Decode(&m); err != nil {
		return &Error{File: path, Line: n.Line, Msg: err.Error()}
	}
	kindNode := locate(n, "kind")
	if !strings.HasPrefix(m.APIVersion, metallbAPIGroup) {
		return &Error{File: path, Line: locate(n, "apiVersion").Line, Field: "apiVersion",
			Msg: fmt.Sprintf("%q is not a MetalLB object (want metallb.io/v1beta1)", m.APIVersion)}
	}
	where := fmt.Sprintf("%s %q spec", m.Kind, m.Metadata.Name)
	spec := locate(n, "spec")
	switch m.Kind {
	case "IPAddressPool":
		if err := (schema{file: path}).check(spec, reflect.TypeOf(poolSpec{}), where); err != nil {
			return err
		}
		var ps poolSpec
		if err := spec.Decode(&ps); err != nil {
			return &Error{File: path, Line: spec.Line, Field: where, Msg: err.Error()}
		}
		l.cfg.Pools = append(l.cfg.Pools, Pool{Name: m.Metadata.Name, Addresses: ps.Addresses, AutoAssign: ps.AutoAssign,
			AvoidBuggyIPs: ps.AvoidBuggyIPs, ServiceAllocation: ps.ServiceAllocation, Labels: m.Metadata.Labels})
		l.pools = append(l.pools, source{file: path, node: spec, path: where})
	case "L2Advertisement":
		for _, h := range hostKeys {
			if v := locate(spec, h.key); v != spec && v != nil && !(v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
				return &Error{File: path, Line: v.Line, Field: where + "." + h.key, Msg: h.instead}
			}
		}
		if err := (schema{file: path}).check(spec, reflect.TypeOf(advertSpec{}), where); err != nil {
			return err
		}
		var as advertSpec
		if err := spec.Decode(&as); err != nil {
			return &Error{File: path, Line: spec.Line, Field: where, Msg: err.Error()}
		}
		l.cfg.L2Advertisements = append(l.cfg.L2Advertisements, L2Advertisement{Name: m.Metadata.Name, IPAddressPools: as.IPAddressPools,
			IPAddressPoolSelectors: as.IPAddressPoolSelectors, Interfaces: as.Interfaces, ServiceSelectors: as.ServiceSelectors})
		l.adverts = append(l.adverts, source{file: path, node: spec, path: where})
	default:
		return &Error{File: path, Line: kindNode.Line, Field: "kind",
			Msg: fmt.Sprintf("%s is not supported: edged does L2 only (IPAddressPool and L2Advertisement)", m.Kind)}
	}
	return nil
}
