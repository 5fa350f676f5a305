package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/config"
)

// runCmd runs the root command with args and returns stdout, stderr and the exit code
// main would use.
func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		e, ok := err.(exitError)
		if !ok {
			t.Fatalf("unexpected error %v", err)
		}
		code = e.code
	}
	return out.String(), errb.String(), code
}

const slaposFixture = "../../config/testdata/slapos/config.toml"

func TestConfigCheckSlapOS(t *testing.T) {
	out, errs, code := runCmd(t, "config", "check", "--config", slaposFixture)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	for _, want := range []string{
		"# read " + slaposFixture + "\n",
		"\n[cluster1]\n",
		"\n[cluster2]\n",
		`db-servers-hosts = "[2001:db8::10]:2099,[2001:db8::11]:2199,[2001:db8::12]:2299"` + "\n",
		`db-servers-hosts = "[2001:db8::20]:2099,[2001:db8::21]:2199"` + "\n",
		`proxysql-servers-ipv6 = "[2001:db8::5]"` + "\n",
		`prov-orchestrator = "slapos"` + "\n",
		`db-servers-credential = "*:*"` + "\n",
		"failover-limit = 3\n",
		"monitoring-ticker = 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Index(out, "[cluster1]") > strings.Index(out, "[cluster2]") {
		t.Errorf("clusters not sorted")
	}
	for _, secret := range []string{"Slap0sAdminSecret", "ResticRepoSecret", "SmtpSecretPw", "DbCluster1Secret", "ProxyAdminSecret"} {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks %s", secret)
		}
	}
}

func TestConfigCheckClusterChangedAndOverride(t *testing.T) {
	out, errs, code := runCmd(t, "config", "check", "--config", slaposFixture, "--cluster", "cluster2",
		"--changed", "--monitoring-ticker=0.2", "--failover-limit", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, "[cluster1]") || !strings.Contains(out, "[cluster2]") {
		t.Errorf("--cluster not honoured:\n%s", out)
	}
	for _, want := range []string{"monitoring-ticker = 0.2\n", "failover-limit = 7\n", `failover-mode = "automatic"` + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "haproxy-write-port") {
		t.Errorf("--changed printed a default value")
	}
}

func TestConfigCheckProblems(t *testing.T) {
	path := "../../config/testdata/typo/config.toml"
	out, errs, code := runCmd(t, "config", "check", "--config", path, "--cluster", "nope", "--log-level", "9")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if strings.Contains(out, "[cluster1]") {
		t.Errorf("settings printed despite problems:\n%s", out)
	}
	want := []string{
		path + `: [cluster1] failover-limit: want an integer, got string "five"`,
		path + `: [cluster1] failover-limt: unknown key; did you mean "failover-limit"?`,
		`command line: cluster: unknown cluster "nope"; the configuration defines: cluster1`,
	}
	for _, w := range want {
		if !strings.Contains(errs, w+"\n") {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
}

func TestConfigCheckMissingFile(t *testing.T) {
	_, errs, code := runCmd(t, "config", "check", "--config", filepath.Join(t.TempDir(), "none.toml"))
	if code != 1 || !strings.Contains(errs, "none.toml: cannot read: no such file or directory") {
		t.Errorf("exit %d stderr %q", code, errs)
	}
}

func TestConfigCheckDefaultSearch(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[Default]\ndb-servers-hosts = \"db1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	// The search's first place is /etc/replication-manager: replace it with an empty
	// directory, so that this machine's own configuration is never found first.
	saved := config.DefaultSearchPaths
	config.DefaultSearchPaths = []string{t.TempDir(), "."}
	defer func() { config.DefaultSearchPaths = saved }()
	out, errs, code := runCmd(t, "config", "check")
	if code != 0 || !strings.Contains(out, "[Default]\n") || !strings.Contains(out, "# read config.toml") {
		t.Errorf("exit %d stderr %q out %q", code, errs, out)
	}
}

// SlapOS runs the original with its flags before the command.
func TestFlagsBeforeTheCommand(t *testing.T) {
	root := newRootCmd()
	args := commandFirst(root, []string{"--monitoring-datadir", "/tmp/x", "--config", slaposFixture, "--memprofile", "/dev/null", "config", "check"})
	if args[0] != "config" || args[1] != "check" {
		t.Fatalf("commandFirst = %v", args)
	}
	out, errs, code := runCmd(t, args...)
	if code != 0 || !strings.Contains(out, "[cluster1]") || !strings.Contains(out, `monitoring-datadir = "/tmp/x"`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if got := commandFirst(root, []string{"monitor", "--config", "x"}); got[0] != "monitor" {
		t.Fatalf("command already first: %v", got)
	}
}
