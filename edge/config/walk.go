package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeOf(time.Duration(0))

// schema checks a YAML node tree against a Go type before any value is
// decoded, so unknown keys, duplicate keys and wrong scalar types are
// reported with their line; a typo never silently does nothing.
type schema struct{ file string }

func (s schema) fail(n *yaml.Node, path, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: s.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (s schema) check(n *yaml.Node, t reflect.Type, path string) error {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return s.check(n.Alias, t, path)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return s.fail(n, path, "want a duration like 300ms or 2s")
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return s.fail(n, path, "%q is not a duration: write it like 300ms or 2s", n.Value)
		}
		return nil
	case t.Kind() == reflect.Struct:
		return s.checkStruct(n, t, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return s.fail(n, path, "want a list")
		}
		for i, item := range n.Content {
			if err := s.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return s.fail(n, path, "want a mapping of key: value")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := s.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return s.fail(n, path, "want a single value, not a list or mapping")
	}
	switch t.Kind() {
	case reflect.Bool:
		if _, err := strconv.ParseBool(n.Value); err != nil || n.Tag != "!!bool" {
			return s.fail(n, path, "%q is not a boolean: write true or false", n.Value)
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(n.Value, 10, 64); err != nil {
			return s.fail(n, path, "%q is not an integer", n.Value)
		}
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(n.Value, 10, 64); err != nil {
			return s.fail(n, path, "%q is not a non-negative integer", n.Value)
		}
	}
	return nil
}

func (s schema) checkStruct(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.MappingNode {
		return s.fail(n, path, "want a mapping of key: value")
	}
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			return s.fail(k, p, "unknown key %q%s", k.Value, suggest(k.Value, fields))
		}
		if seen[k.Value] {
			return s.fail(k, p, "key %q appears twice", k.Value)
		}
		seen[k.Value] = true
		if err := s.check(v, ft, p); err != nil {
			return err
		}
	}
	return nil
}

// suggest names the known key closest to a typo.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestD := "", 3 // suggest only close matches
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q? keys are case-sensitive)", name)
		}
		if d := distance(strings.ToLower(key), strings.ToLower(name)); d < bestD {
			best, bestD = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// locate returns the node at path (keys and indices), or the deepest
// existing parent, so an error can name the closest line.
func locate(n *yaml.Node, path ...any) *yaml.Node {
	for _, p := range path {
		if n == nil {
			return nil
		}
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p >= 0 && p < len(n.Content) {
				next = n.Content[p]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}
