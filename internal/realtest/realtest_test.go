package realtest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestMissingSkipsOrFails(t *testing.T) {
	for _, c := range []struct {
		ci, require string
		fail        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"", "1", true},
		{"1", "1", true},
		{"false", "0", false},
	} {
		t.Setenv("CI", c.ci)
		t.Setenv("RMP_REQUIRE_REAL", c.require)
		r := &recorder{TB: t}
		Missing(r, "%s not installed; install Debian's %s", "frobd", "frob")
		want := "frobd not installed; install Debian's frob"
		if c.fail {
			if r.skipped != "" || !strings.HasPrefix(r.failed, want+" (CI or RMP_REQUIRE_REAL is set") {
				t.Errorf("CI=%q RMP_REQUIRE_REAL=%q: skipped %q, failed %q; want a failure", c.ci, c.require, r.skipped, r.failed)
			}
		} else if r.failed != "" || r.skipped != want {
			t.Errorf("CI=%q RMP_REQUIRE_REAL=%q: skipped %q, failed %q; want a skip", c.ci, c.require, r.skipped, r.failed)
		}
	}
}

func TestLookPathNamesThePackage(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("RMP_REQUIRE_REAL", "")
	r := &recorder{TB: t}
	LookPath(r, "/nonexistent/rmp-frobd", "rmp-frob")
	if !strings.Contains(r.skipped, "/nonexistent/rmp-frobd not installed") || !strings.Contains(r.skipped, "install Debian's rmp-frob") {
		t.Errorf("skip message %q", r.skipped)
	}
}
