package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/internal/realtest"
)

// make install lays out what SlapOS's repman recipe expects of a build: the binary under
// both names (its wrapper runs bin/replication-manager), share/ and dashboard/ (which it
// rsyncs into the partition).
func TestMakeInstallLayout(t *testing.T) {
	realtest.LookPath(t, "make", "make")
	tmp := t.TempDir()
	prefix := filepath.Join(tmp, "prefix")
	cmd := exec.Command("make", "-C", "../..", "install", "PREFIX="+prefix, "BIN="+filepath.Join(tmp, "build", "replication-manager-pro"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, p := range []string{"bin/replication-manager-pro", "bin/replication-manager", "dashboard/index.html",
		"share/compat.md", "share/configuration.md"} {
		if _, err := os.Stat(filepath.Join(prefix, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	out, err := exec.Command(filepath.Join(prefix, "bin", "replication-manager"), "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "replication-manager-pro") {
		t.Errorf("bin/replication-manager version: %v\n%s", err, out)
	}
}
