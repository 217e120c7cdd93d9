// Command packaging builds edged's Debian package with nfpm (as a library, so
// no packaging tool has to be installed). It is its own module so nfpm's
// dependencies stay out of edged's go.mod. Run it through `make deb`.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

func main() {
	spec := flag.String("spec", "nfpm.yaml", "nfpm package description")
	out := flag.String("out", "../dist", "directory for the .deb")
	flag.Parse()
	if err := run(*spec, *out); err != nil {
		slog.Error("package edged", "err", err)
		os.Exit(1)
	}
}

func run(spec, outDir string) error {
	raw, err := os.ReadFile(spec)
	if err != nil {
		return err
	}
	// ${VERSION} and ${ARCH} come from the environment, also in contents'
	// paths (nfpm expands them only in some fields): the binary is
	// bin/linux_${ARCH}/edged.
	cfg, err := nfpm.Parse(strings.NewReader(os.ExpandEnv(string(raw))))
	if err != nil {
		return fmt.Errorf("read %s: %w", spec, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("prepare deb: %w", err)
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(outDir, pkg.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("build %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}
