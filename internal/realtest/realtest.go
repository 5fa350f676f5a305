// Package realtest decides what a test does when a real component it needs (a Debian
// program such as mariadbd or haproxy, or root) is missing: it skips, naming what is
// missing and which Debian package provides it, except where the environment promises
// every component (CI, or RMP_REQUIRE_REAL=1), where it fails, so that a broken machine
// cannot turn the real-server tests into silent skips.
//
// It depends on nothing but the standard library, so every package's tests can use it,
// including those that internal/testenv itself imports (internal/dbproc, orchestrator/local).
// Skips under -short are not its business: they stay skips (make test-short).
package realtest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Required reports whether a missing real component must fail the test instead of skipping
// it: when CI or RMP_REQUIRE_REAL is set to anything but "", "0" or "false".
func Required() bool {
	return set(os.Getenv("CI")) || set(os.Getenv("RMP_REQUIRE_REAL"))
}

func set(v string) bool { return v != "" && v != "0" && v != "false" }

// Missing ends the test because a real component it needs is missing: t.Skip with the
// message, or t.Fatal with it when Required. The message says what is missing and which
// Debian package provides it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (CI or RMP_REQUIRE_REAL is set: a missing component fails the test instead of skipping it)", msg)
		return
	}
	t.Skip(msg)
}

// LookPath returns the path of program file (a name searched in PATH, or a path), and ends
// the test with Missing when it is not installed; debianPackage names the package that
// provides it.
func LookPath(t testing.TB, file, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(file)
	if err != nil {
		Missing(t, "%s not installed: %v; install Debian's %s", file, err, debianPackage)
	}
	return p
}

// Root ends the test with Missing unless it runs as root; why says what needs root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root: %s", why)
	}
}
