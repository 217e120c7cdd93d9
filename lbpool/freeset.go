package lbpool

import "github.com/google/btree"

// btreeDegree is google/btree's suggested degree for in-memory sets.
const btreeDegree = 32

// ival is an inclusive span of free addresses.
type ival struct{ first, last u128 }

// freeSet holds the free addresses of one family of one pool as disjoint,
// non-adjacent spans in a B-tree, so the lowest free address is the minimum
// and taking or returning one address is O(log n) in the number of spans,
// which is bounded by the number of allocations plus the number of ranges.
//
// With avoidBuggyIPs no span starts or ends on an address ending .0 or .255,
// and no span consists only of them, so the minimum is always allocatable.
type freeSet struct {
	fam   Family
	avoid bool
	t     *btree.BTreeG[ival]
}

func newFreeSet(fam Family, avoid bool) *freeSet {
	// Spans are keyed by their last address: taking the lowest address of a
	// span, or growing a span downwards on release, keeps its key, so the
	// hot paths replace one item instead of deleting and inserting.
	return &freeSet{fam: fam, avoid: avoid, t: btree.NewG(btreeDegree, func(a, b ival) bool { return a.last.less(b.last) })}
}

// add inserts a span that overlaps nothing already in the set.
func (f *freeSet) add(iv ival) {
	if iv, ok := f.trim(iv); ok {
		f.t.ReplaceOrInsert(iv)
	}
}

// trim moves the ends of iv past skipped addresses; ok is false if nothing is left.
func (f *freeSet) trim(iv ival) (ival, bool) {
	if !f.avoid || f.fam != IPv4 {
		return iv, true
	}
	for buggy(iv.first, f.fam) && iv.first.less(iv.last) {
		iv.first = iv.first.add1()
	}
	for buggy(iv.last, f.fam) && iv.first.less(iv.last) {
		iv.last = iv.last.sub1()
	}
	return iv, !buggy(iv.first, f.fam)
}

// lowest is the lowest free address.
func (f *freeSet) lowest() (u128, bool) {
	iv, ok := f.t.Min()
	return iv.first, ok
}

// containing returns the span holding a.
func (f *freeSet) containing(a u128) (ival, bool) {
	var found ival
	ok := false
	f.t.AscendGreaterOrEqual(ival{last: a}, func(iv ival) bool {
		found, ok = iv, !a.less(iv.first)
		return false
	})
	return found, ok
}

// take removes a from the set; false if it was not free.
func (f *freeSet) take(a u128) bool {
	// Allocation nearly always takes the lowest free address: the minimum
	// span then needs no search.
	iv, ok := f.t.Min()
	if !ok || a.less(iv.first) || iv.last.less(a) {
		iv, ok = f.containing(a)
	}
	if !ok {
		return false
	}
	if a.less(iv.last) {
		// The upper part keeps the span's key: replace in place.
		if upper, ok := f.trim(ival{a.add1(), iv.last}); ok {
			f.t.ReplaceOrInsert(upper)
		} else {
			f.t.Delete(iv)
		}
	} else {
		f.t.Delete(iv)
	}
	if iv.first.less(a) {
		f.add(ival{iv.first, a.sub1()})
	}
	return true
}

// put returns a (inside the pool, not free, not skipped) to the set, merging
// it with neighbouring spans.
func (f *freeSet) put(a u128) {
	iv := ival{a, a}
	// Below every free span (the common case when the lowest address was
	// taken): no predecessor to search for, the minimum is the successor.
	if min, ok := f.t.Min(); !ok || a.less(min.first) {
		if ok && f.adjacent(a, min.first) {
			iv.last = min.last // same key as min: replaced in place
		}
		f.t.ReplaceOrInsert(iv)
		return
	}
	if prev, ok := f.before(a); ok && f.adjacent(prev.last, a) {
		f.t.Delete(prev)
		iv.first = prev.first
	}
	if next, ok := f.after(a); ok && f.adjacent(a, next.first) {
		iv.last = next.last // same key as next: replaced in place
	}
	f.t.ReplaceOrInsert(iv)
}

func (f *freeSet) before(a u128) (ival, bool) {
	var found ival
	ok := false
	f.t.DescendLessOrEqual(ival{last: a}, func(iv ival) bool {
		found, ok = iv, true
		return false
	})
	return found, ok
}

func (f *freeSet) after(a u128) (ival, bool) {
	var found ival
	ok := false
	f.t.AscendGreaterOrEqual(ival{last: a}, func(iv ival) bool {
		found, ok = iv, true
		return false
	})
	return found, ok
}

// adjacent reports whether nothing but skipped addresses lies strictly
// between x and y (x < y), so their spans may merge. Buggy addresses come in
// runs of at most two (.255 then .0), which bounds the walk.
func (f *freeSet) adjacent(x, y u128) bool {
	for n, c := 0, x.add1(); c.less(y); n, c = n+1, c.add1() {
		if n >= 2 || !f.avoid || !buggy(c, f.fam) {
			return false
		}
	}
	return true
}

// spans is the number of free spans (for tests of the memory bound).
func (f *freeSet) spans() int { return f.t.Len() }
