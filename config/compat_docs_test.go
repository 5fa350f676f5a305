package config

import (
	"os"
	"strings"
	"testing"
)

const (
	compatPath  = "../docs/compat.md"
	compatBegin = "<!-- BEGIN COMPAT KEYS (generated: go test ./config -run TestDocsCompatKeys -update) -->\n"
	compatEnd   = "<!-- END COMPAT KEYS -->"
)

// TestDocsCompatKeys fails when the key tables of docs/compat.md differ from the catalogue;
// run with -update to rewrite them.
func TestDocsCompatKeys(t *testing.T) {
	b, err := os.ReadFile(compatPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, compatBegin), strings.Index(doc, compatEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the key table markers", compatPath)
	}
	want := doc[:i+len(compatBegin)] + CompatKeysMarkdown() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(compatPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s key tables are out of date; run: go test ./config -run TestDocsCompatKeys -update", compatPath)
}
