package install

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goldentooth/edged/test/kubetest"
)

// installSteps are the sh blocks of docs/operate.md's Install section, in
// order. The test runs each one word for word.
type installSteps struct {
	EveryHost string // 1. apt-get install the .deb
	OneHost   string // 2. edged tls init / issue
	Start     string // 3. edged.yaml, kubeconfig, validate, start
	Upgrade   string
	Purge     string
}

// readInstallDocs parses the Install section of docs/operate.md.
func readInstallDocs() (installSteps, error) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		return installSteps{}, err
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "operate.md"))
	if err != nil {
		return installSteps{}, err
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Install\n")
	if start < 0 {
		return installSteps{}, fmt.Errorf("docs/operate.md has no ## Install section")
	}
	sec := doc[start+1:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}
	var blocks []string
	for {
		i := strings.Index(sec, "\n```sh\n")
		if i < 0 {
			break
		}
		sec = sec[i+len("\n```sh\n"):]
		j := strings.Index(sec, "\n```")
		if j < 0 {
			return installSteps{}, fmt.Errorf("docs/operate.md: unterminated sh block")
		}
		blocks = append(blocks, sec[:j+1])
		sec = sec[j+4:]
	}
	if len(blocks) != 5 {
		return installSteps{}, fmt.Errorf("docs/operate.md's Install section has %d sh blocks, the test knows 5 (install, tls, start, upgrade, purge): update test/install with the docs", len(blocks))
	}
	return installSteps{EveryHost: blocks[0], OneHost: blocks[1], Start: blocks[2], Upgrade: blocks[3], Purge: blocks[4]}, nil
}
