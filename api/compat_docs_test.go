package api

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite the route tables of docs/compat.md")

const (
	compatPath  = "../docs/compat.md"
	compatBegin = "<!-- BEGIN COMPAT ROUTES (generated: go test ./api -run TestDocsCompatRoutes -update) -->\n"
	compatEnd   = "<!-- END COMPAT ROUTES -->"
)

// TestDocsCompatRoutes fails when the route tables of docs/compat.md differ from the route
// table; run with -update to rewrite them.
func TestDocsCompatRoutes(t *testing.T) {
	b, err := os.ReadFile(compatPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, compatBegin), strings.Index(doc, compatEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the route table markers", compatPath)
	}
	want := doc[:i+len(compatBegin)] + CompatRoutesMarkdown() + doc[j:]
	if want == doc {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(compatPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s route tables are out of date; run: go test ./api -run TestDocsCompatRoutes -update", compatPath)
}
