package lbpool

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseUnicast(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     netip.Addr // invalid: refused
	}{
		{"ipv4", "10.4.0.7", netip.MustParseAddr("10.4.0.7")},
		{"ipv6", "fd00:4::7", netip.MustParseAddr("fd00:4::7")},
		{"ipv6 upper case", "FD00:4::7", netip.MustParseAddr("fd00:4::7")},
		{"zone", "fd00:4::7%eth0", netip.Addr{}},
		{"zone with config", "fe80::1%x]:1\nglobal\n  program x", netip.Addr{}},
		{"mapped", "::ffff:10.4.0.7", netip.Addr{}},
		{"loopback", "127.0.0.1", netip.Addr{}},
		{"loopback6", "::1", netip.Addr{}},
		{"unspecified", "0.0.0.0", netip.Addr{}},
		{"link-local", "169.254.169.254", netip.Addr{}},
		{"link-local6", "fe80::1", netip.Addr{}},
		{"multicast", "224.0.0.1", netip.Addr{}},
		{"leading zero", "010.4.0.7", netip.Addr{}},
		{"space", " 10.4.0.7", netip.Addr{}},
		{"empty", "", netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUnicast(tc.in)
			if got != tc.want {
				t.Fatalf("ParseUnicast(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if !tc.want.IsValid() && !errors.Is(err, ErrBadAddress) {
				t.Fatalf("ParseUnicast(%q) error %v, want ErrBadAddress", tc.in, err)
			}
		})
	}
}

// FuzzParseUnicast checks that an accepted address has no zone, renders
// without a byte outside an address's charset, and round-trips.
func FuzzParseUnicast(f *testing.F) {
	for _, s := range []string{"10.4.0.7", "fd00::1", "fe80::1%eth0", "::ffff:1.2.3.4", "1.2.3.4\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseUnicast(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q holds a raw newline", err)
			}
			return
		}
		r := a.String()
		if a.Zone() != "" || strings.Trim(r, "0123456789abcdef.:") != "" {
			t.Fatalf("ParseUnicast(%q) accepted %q", s, r)
		}
		if b, err := ParseUnicast(r); err != nil || b != a {
			t.Fatalf("round trip of %q: %v, %v", r, b, err)
		}
	})
}
