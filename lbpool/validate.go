package lbpool

import (
	"errors"
	"fmt"
	"sort"
)

// ErrInvalidPool is wrapped by every PoolError.
var ErrInvalidPool = errors.New("invalid pool")

// PoolError says which pool, field and item of a pool list is wrong, so a
// config loader can point at the line that holds it.
type PoolError struct {
	// Pool is the index of the pool in the list, Name its name.
	Pool int
	Name string
	// Field is "name" or "addresses".
	Field string
	// Item is the index inside Field (an address entry), or -1.
	Item int
	Err  error
}

// Error implements error.
func (e *PoolError) Error() string {
	where := fmt.Sprintf("pools[%d]", e.Pool)
	if e.Name != "" {
		where = fmt.Sprintf("pool %q", e.Name)
	}
	if e.Item >= 0 {
		return fmt.Sprintf("%s: %s[%d]: %v", where, e.Field, e.Item, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", where, e.Field, e.Err)
}

// Unwrap returns the cause.
func (e *PoolError) Unwrap() []error { return []error{ErrInvalidPool, e.Err} }

// ValidatePools checks a pool list: every pool has a unique non-empty name
// and at least one range, and no address is in two ranges (of one pool or of
// two). The first problem is returned as a *PoolError.
func ValidatePools(pools []Pool) error {
	seen := make(map[string]int, len(pools))
	for i, p := range pools {
		if p.Name == "" {
			return &PoolError{Pool: i, Field: "name", Item: -1, Err: errors.New("a pool needs a name")}
		}
		if j, dup := seen[p.Name]; dup {
			return &PoolError{Pool: i, Name: p.Name, Field: "name", Item: -1,
				Err: fmt.Errorf("duplicate pool name (pools[%d] has it too)", j)}
		}
		seen[p.Name] = i
		if len(p.Ranges) == 0 {
			return &PoolError{Pool: i, Name: p.Name, Field: "addresses", Item: -1,
				Err: errors.New("the pool has no addresses: give at least one CIDR or range")}
		}
		for k, r := range p.Ranges {
			if !r.First.IsValid() || !r.Last.IsValid() || r.First.Compare(r.Last) > 0 || familyOf(r.First) != familyOf(r.Last) {
				return &PoolError{Pool: i, Name: p.Name, Field: "addresses", Item: k, Err: fmt.Errorf("invalid range %s", r)}
			}
		}
	}
	type ref struct{ pool, item int }
	var all []ref
	for i, p := range pools {
		for k := range p.Ranges {
			all = append(all, ref{i, k})
		}
	}
	rng := func(r ref) Range { return pools[r.pool].Ranges[r.item] }
	sort.SliceStable(all, func(a, b int) bool {
		ra, rb := rng(all[a]), rng(all[b])
		if ra.Family() != rb.Family() {
			return ra.Family() < rb.Family()
		}
		return ra.First.Less(rb.First)
	})
	// After sorting, a range overlaps an earlier one exactly when it starts
	// before the furthest end seen so far in its family.
	if len(all) == 0 {
		return nil
	}
	far := all[0]
	for n := 1; n < len(all); n++ {
		prev, cur := far, all[n]
		if rng(prev).Family() != rng(cur).Family() || rng(prev).Last.Less(rng(cur).Last) {
			far = cur
		}
		if !rng(prev).overlaps(rng(cur)) {
			continue
		}
		// Report on the later entry in config order.
		first, second := prev, cur
		if second.pool < first.pool || (second.pool == first.pool && second.item < first.item) {
			first, second = second, first
		}
		p := pools[second.pool]
		other := fmt.Sprintf("pool %q", pools[first.pool].Name)
		if first.pool == second.pool {
			other = "another entry of the same pool"
		}
		return &PoolError{Pool: second.pool, Name: p.Name, Field: "addresses", Item: second.item,
			Err: fmt.Errorf("%s overlaps %s of %s", rng(second), rng(first), other)}
	}
	return nil
}
