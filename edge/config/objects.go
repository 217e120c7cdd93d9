package config

import (
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// Object is one MetalLB object read from the cluster (kubernetes.metallbCRDs)
// rather than from a file.
type Object struct {
	// Source names the object in messages, e.g.
	// "IPAddressPool metallb-system/default"; errors use it as their File.
	Source string
	// Data is the object as YAML or JSON: apiVersion, kind, metadata, spec.
	Data []byte
}

// WithObjects returns a copy of c with MetalLB objects merged into its pools
// and advertisements after the file's own, converted and validated exactly
// as metallbManifests files are (one conversion, one validation). c is not
// changed. A pool name that the file (or an earlier object) already uses is
// an error naming both places: an object never silently replaces a pool.
// Errors are *Error values whose File is the offending Object's Source.
func (c *Config) WithObjects(objs []Object) (*Config, error) {
	cp := *c
	cp.Pools = slices.Clone(c.Pools)
	cp.L2Advertisements = slices.Clone(c.L2Advertisements)
	cp.LBPools = nil
	l := &loaded{cfg: &cp, root: c.root, pools: slices.Clone(c.pools), adverts: slices.Clone(c.adverts)}
	// A Config built in code rather than by Load has no positions.
	for i := len(l.pools); i < len(cp.Pools); i++ {
		l.pools = append(l.pools, source{file: c.Path, path: fmt.Sprintf("pools[%d]", i)})
	}
	for i := len(l.adverts); i < len(cp.L2Advertisements); i++ {
		l.adverts = append(l.adverts, source{file: c.Path, path: fmt.Sprintf("l2Advertisements[%d]", i)})
	}
	for _, o := range objs {
		var doc yaml.Node
		if err := yaml.Unmarshal(o.Data, &doc); err != nil {
			return nil, &Error{File: o.Source, Msg: fmt.Sprintf("malformed object: %v", err)}
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			return nil, &Error{File: o.Source, Msg: "empty object"}
		}
		before := len(cp.Pools)
		if err := l.mergeObject(o.Source, doc.Content[0]); err != nil {
			return nil, objectError(err, objs)
		}
		if len(cp.Pools) > before {
			if err := l.checkClash(before); err != nil {
				return nil, err
			}
		}
	}
	if err := l.validate(); err != nil {
		return nil, objectError(err, objs)
	}
	cp.root, cp.pools, cp.adverts = l.root, l.pools, l.adverts
	return &cp, nil
}

// checkClash reports pool i if an earlier pool has its name.
func (l *loaded) checkClash(i int) error {
	name := l.cfg.Pools[i].Name
	for j := 0; j < i; j++ {
		if l.cfg.Pools[j].Name != name {
			continue
		}
		prev := l.pools[j]
		where := prev.file
		if n := prev.node; n != nil && n.Line > 0 {
			where = fmt.Sprintf("%s:%d", prev.file, n.Line)
		}
		src := l.pools[i]
		return &Error{File: src.file, Field: "metadata.name",
			Msg: fmt.Sprintf("pool %q is already defined at %s (%s): pool names must be unique across edged.yaml, its manifests and the cluster; rename one", name, where, prev.path)}
	}
	return nil
}

// objectError drops the line of an error about an object read from the
// cluster: it would count lines of edged's own rendering of the object.
func objectError(err error, objs []Object) error {
	var e *Error
	if errors.As(err, &e) {
		for _, o := range objs {
			if e.File == o.Source {
				cp := *e
				cp.Line = 0
				return &cp
			}
		}
	}
	return err
}
