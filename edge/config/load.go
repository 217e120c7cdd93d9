package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// source remembers where each pool and advertisement came from, so errors
// found after merging still point at the right file and line.
type source struct {
	file string
	node *yaml.Node // the pool's or advertisement's mapping (or manifest spec)
	path string     // field path prefix, e.g. pools[2] or IPAddressPool "x" spec
}

// loaded is a Config plus the positions needed for error messages.
type loaded struct {
	cfg     *Config
	root    *yaml.Node
	pools   []source
	adverts []source
}

// Load reads, defaults and validates the config at path. Nothing on the
// system is touched. Errors are *Error values naming file, line and field.
func Load(path string) (*Config, error) {
	l, err := load(path)
	if err != nil {
		return nil, err
	}
	return l.cfg, nil
}

func load(path string) (*loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config: %v (pass another file with --config)", unwrapPath(err))}
	}
	root, err := parseYAML(path, data)
	if err != nil {
		return nil, err
	}
	if err := (schema{file: path}).check(root, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, err
	}
	cfg, err := decode(path, data, root)
	if err != nil {
		return nil, err
	}
	cfg.defaultListeners()
	l := &loaded{cfg: cfg, root: root}
	for i := range cfg.Pools {
		l.pools = append(l.pools, source{file: path, node: locate(root, "pools", i), path: fmt.Sprintf("pools[%d]", i)})
	}
	for i := range cfg.L2Advertisements {
		l.adverts = append(l.adverts, source{file: path, node: locate(root, "l2Advertisements", i), path: fmt.Sprintf("l2Advertisements[%d]", i)})
	}
	for i, m := range cfg.MetallbManifests {
		if err := l.mergeManifest(path, m, locate(root, "metallbManifests", i)); err != nil {
			return nil, err
		}
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	cfg.root, cfg.pools, cfg.adverts = root, l.pools, l.adverts
	return l, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// parseYAML parses data into its document's top node.
func parseYAML(path string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: path, Line: line, Msg: "malformed YAML: " + m[2]}
		}
		return nil, &Error{File: path, Line: 1, Msg: "malformed YAML: " + msg}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: path, Line: 1, Msg: "the config is empty: at least one pool is needed"}
	}
	return doc.Content[0], nil
}

// decode reads the values with viper (defaults included). The lists that
// carry Kubernetes label keys (pools, l2Advertisements) are decoded from the
// YAML itself, because viper folds map keys to lower case and splits them on
// dots, which would change label keys such as app.kubernetes.io/name; so
// is staticVIPs, a list of the same shape.
func decode(path string, data []byte, root *yaml.Node) (*Config, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter("::"))
	v.SetConfigType("yaml")
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, &Error{File: path, Line: 1, Msg: "read: " + err.Error()}
	}
	cfg := &Config{Path: path}
	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.TagName = "yaml"
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))
	})
	if err != nil {
		return nil, &Error{File: path, Line: 1, Msg: "decode: " + err.Error()}
	}
	cfg.Pools, cfg.L2Advertisements, cfg.StaticVIPs = nil, nil, nil
	for key, dst := range map[string]any{"pools": &cfg.Pools, "l2Advertisements": &cfg.L2Advertisements, "staticVIPs": &cfg.StaticVIPs} {
		if n := locate(root, key); n != root && n != nil {
			if err := n.Decode(dst); err != nil {
				return nil, &Error{File: path, Line: n.Line, Field: key, Msg: err.Error()}
			}
		}
	}
	return cfg, nil
}
