package lbpool

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // Range.String()
		size    uint64
		wantErr string
	}{
		{name: "reference range", in: "10.4.11.0 - 10.4.15.254", want: "10.4.11.0 - 10.4.15.254", size: 1279},
		{name: "no spaces", in: "10.4.11.0-10.4.15.254", want: "10.4.11.0 - 10.4.15.254", size: 1279},
		{name: "cidr v4", in: "10.4.11.0/24", want: "10.4.11.0 - 10.4.11.255", size: 256},
		{name: "cidr /32", in: "10.4.11.7/32", want: "10.4.11.7", size: 1},
		{name: "single address", in: " 10.4.11.7 ", want: "10.4.11.7", size: 1},
		{name: "cidr v6 /120", in: "fd00:4::/120", want: "fd00:4:: - fd00:4::ff", size: 256},
		{name: "cidr v6 /64 saturates", in: "fd00:4::/64", want: "fd00:4:: - fd00:4::ffff:ffff:ffff:ffff", size: 1<<64 - 1},
		{name: "v6 range", in: "fd00::1 - fd00::10", want: "fd00::1 - fd00::10", size: 16},
		{name: "slash 8", in: "10.0.0.0/8", want: "10.0.0.0 - 10.255.255.255", size: 1 << 24},
		{name: "reversed", in: "10.4.15.254 - 10.4.11.0", wantErr: "is reversed"},
		{name: "mixed families", in: "10.4.11.0 - fd00::1", wantErr: "mixes IPv4 and IPv6"},
		{name: "bad cidr", in: "10.4.11.0/33", wantErr: "not a valid CIDR"},
		{name: "host bits", in: "10.4.11.1/24", wantErr: "did you mean 10.4.11.0/24"},
		{name: "garbage", in: "ten.four", wantErr: "neither a CIDR"},
		{name: "empty", in: "  ", wantErr: "empty address entry"},
		{name: "bad first", in: "10.4.11 - 10.4.11.9", wantErr: "first address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRange(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRange(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r.String()); diff != "" {
				t.Errorf("range (-want +got):\n%s", diff)
			}
			if r.Size() != tt.size {
				t.Errorf("Size() = %d, want %d", r.Size(), tt.size)
			}
		})
	}
}

func TestCountBuggy(t *testing.T) {
	for _, tt := range []struct{ first, last uint64 }{{0, 0}, {0, 255}, {255, 256}, {1, 254}, {3, 1000}, {256, 511}, {100, 100000}} {
		var want uint64
		for x := tt.first; x <= tt.last; x++ {
			if x%256 == 0 || x%256 == 255 {
				want++
			}
		}
		if got := countBuggy(tt.first, tt.last); got != want {
			t.Errorf("countBuggy(%d, %d) = %d, want %d", tt.first, tt.last, got, want)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.4.11.0 - 10.4.15.254", "10.0.0.0/8", "fd00::/64", "1.2.3.4", "::1-::2", "1.2.3.4-::1", "a-b-c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.First.Compare(r.Last) > 0 || r.First.Is4() != r.Last.Is4() {
			t.Fatalf("ParseRange(%q) = %v: invalid range accepted", s, r)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) || r.Size() == 0 {
			t.Fatalf("ParseRange(%q) = %v: does not contain its ends", s, r)
		}
		// A parsed range prints to something that parses back to itself.
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %q: %v, %v", r.String(), back, err)
		}
	})
}
