package edgelab

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLineWriter: lines split across writes, several in one write and a
// trailing partial line (held back) come out as whole lines only.
func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{fn: func(line []byte) { got = append(got, string(line)) }}
	for _, chunk := range []string{`{"ok":`, "true}\nlisten", "ing\n\nx\ny", "z"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	want := []string{`{"ok":true}`, "listening", "", "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}
