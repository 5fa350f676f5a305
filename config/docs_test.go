package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the key table of docs/configuration.md from the registry")

const (
	docsPath   = "../docs/configuration.md"
	tableBegin = "<!-- BEGIN KEY TABLE (generated from config.Settings: go test ./config -run TestDocsKeyTable -update) -->\n"
	tableEnd   = "<!-- END KEY TABLE -->"
)

// TestDocsKeyTable fails when the key table of docs/configuration.md differs
// from the registry; run with -update to rewrite it.
func TestDocsKeyTable(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, tableBegin)
	j := strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the key table markers", docsPath)
	}
	want := doc[:i+len(tableBegin)] + KeyTableMarkdown() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(docsPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s key table is out of date; run: go test ./config -run TestDocsKeyTable -update", docsPath)
}
