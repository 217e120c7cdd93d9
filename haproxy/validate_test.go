package haproxy

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
)

// TestValidateErrorNamesSections checks that a refused render names the
// section HAProxy choked on, so the caller can blame one Service.
func TestValidateErrorNamesSections(t *testing.T) {
	dir := t.TempDir()
	vip := netip.MustParseAddrPort("127.0.0.1:8443")
	srv := Server{Addr: netip.MustParseAddrPort("127.0.0.1:8080")}
	m := Model{
		Frontends: []Frontend{
			{Name: "ns_good_80_127.0.0.1", Bind: netip.MustParseAddrPort("127.0.0.1:8080"), Backend: "ns_good_80"},
			{Name: "ns_tls_443_127.0.0.1", Bind: vip, Backend: "ns_tls_443", CertFile: filepath.Join(dir, "missing.pem")},
		},
		Backends: []Backend{{Name: "ns_good_80", Servers: []Server{srv}}, {Name: "ns_tls_443", Servers: []Server{srv}}},
	}
	data, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	p := Paths{Binary: mustHAProxyBin(t), Config: filepath.Join(dir, "edged.cfg")}
	err = p.WriteChecked(context.Background(), data)
	var ve *ValidateError
	if !errors.As(err, &ve) || !errors.Is(err, ErrValidate) {
		t.Fatalf("err = %v, want a *ValidateError wrapping ErrValidate", err)
	}
	if want := []string{"ns_tls_443_127.0.0.1"}; !slices.Equal(ve.Sections(), want) {
		t.Errorf("sections = %q, want %q (output: %s)", ve.Sections(), want, ve.Output)
	}
}

func TestSectionsAt(t *testing.T) {
	data := []byte("defaults d\n  mode tcp\n\nfrontend fe_a\n  bind 1.2.3.4:80\n\nbackend be_b\n  server s1 1.2.3.4:1\n")
	out := "[ALERT] parsing [/x/c.cfg:5] : bad bind\n[ALERT] parsing [/other.cfg:7] : x\n[ALERT] Proxy 'be_b': no server\n[ALERT] 'nope'\n[ALERT] [/x/c.cfg:2] defaults"
	if got, want := slices.Sorted(maps.Keys(alertsBySection(out, "/x/c.cfg", data))), []string{"be_b", "fe_a"}; !slices.Equal(got, want) {
		t.Errorf("sections = %q, want %q", got, want)
	}
}
