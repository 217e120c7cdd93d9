package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSCommands: init then issue write a CA and a host certificate that
// names the node (CN and DNS SAN), and neither replaces existing files.
func TestTLSCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := execute(append(args, "--dir", dir), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("tls", "init"); code != 0 {
		t.Fatalf("tls init: exit %d: %s", code, out)
	}
	if code, out := run("tls", "issue", "edge1", "--group", ""); code != 0 || !strings.Contains(out, "edge1.crt") {
		t.Fatalf("tls issue: exit %d: %s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "edge1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("edge1.crt holds no PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "edge1" || len(c.DNSNames) != 1 || c.DNSNames[0] != "edge1" {
		t.Errorf("CN %q, DNS %q: want edge1 for both", c.Subject.CommonName, c.DNSNames)
	}
	if code, out := run("tls", "init"); code == 0 || !strings.Contains(out, "already exists") {
		t.Errorf("second tls init: exit %d: %s", code, out)
	}
	if code, out := run("tls", "issue", "edge1", "--group", ""); code == 0 || !strings.Contains(out, "already exists") {
		t.Errorf("second tls issue: exit %d: %s", code, out)
	}
	if code, out := run("tls", "issue", "../x", "--group", ""); code == 0 {
		t.Errorf("tls issue ../x: exit 0: %s", out)
	}
}
