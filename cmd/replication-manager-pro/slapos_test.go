package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/orchestrator/slapos"
)

// slaposRequest is a SlapOS request committed in this repository (testdata/ at its root,
// shared with orchestrator/slapos's tests).
const slaposRequest = "../../testdata/slapos-request-cluster1.json"

func TestSlaposRender(t *testing.T) {
	if _, err := os.Stat(slaposRequest); err != nil {
		t.Fatalf("committed test fixture missing: %v", err)
	}
	out := t.TempDir()
	stdout, stderr, code := runCmd(t, "slapos", "render", "--parameters", slaposRequest, "--out", out)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	cfg, err := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	c, ok := cfg.Cluster("cluster1")
	if !ok {
		t.Fatal("no cluster1")
	}
	hosts, _ := c.Settings.Hosts()
	var ports []int
	for _, h := range hosts {
		ports = append(ports, h.Port)
	}
	if len(ports) != 4 || ports[0] != 2099 || ports[1] != 2199 || ports[2] != 2299 || ports[3] != 2399 {
		t.Fatalf("ports %v", ports)
	}
	// No secret on the output.
	dbCred, _ := c.Settings.DBCredential()
	api, _ := cfg.Default.APIUsers()
	for _, s := range []string{dbCred.Password, c.Settings.ProxySQLPassword, api[0].Password} {
		if s == "" || strings.Contains(stdout+stderr, s) {
			t.Fatalf("secret %q missing or printed:\n%s", s, stdout)
		}
	}
	if !strings.Contains(stdout, "cluster1: databases [[::1]:2099 [::1]:2199 [::1]:2299 [::1]:2399], proxysql 127.0.0.1:7032 (admin port 6032)") {
		t.Fatalf("summary:\n%s", stdout)
	}
	// Flags for the root partition and the ports.
	out2 := t.TempDir()
	_, stderr, code = runCmd(t, "slapos", "render", "--parameters", slaposRequest, "--out", out2,
		"--ipv4", "10.0.74.165", "--ipv6", "2001:db8::5", "--proxysql-port", "7050", "--proxysql-admin-port", "6050")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cfg, err = config.Load(filepath.Join(out2, "config.toml"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = cfg.Cluster("cluster1")
	if c.Settings.DBServersHosts != "[2001:db8::5]:2099,[2001:db8::5]:2199,[2001:db8::5]:2299,[2001:db8::5]:2399" ||
		c.Settings.ProxySQLPort != 7050 || c.Settings.ProxySQLAdminPort != 6050 || cfg.Default.APIBind != "10.0.74.165" {
		t.Fatalf("flags not applied: %q %d %d", c.Settings.DBServersHosts, c.Settings.ProxySQLPort, c.Settings.ProxySQLAdminPort)
	}
}

func TestSlaposRenderBadParameters(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, json, want string }{
		{"amount", `{"repman-cluster-dict": {"cluster1": {"database-amount": 1}}}`, "cluster1: database-amount: must be >= 2, got 1\n"},
		{"mode", `{"repman-cluster-dict": {"cluster1": {"failover-mode": "sometimes"}}}`,
			`cluster1: failover-mode: must be one of "manual", "automatic", got "sometimes"` + "\n"},
		{"both", `{"repman-cluster-dict": {"cluster1": {"database-amount": 1, "failover-mode": "sometimes"}}}`,
			"cluster1: database-amount: must be >= 2, got 1\n" + `cluster1: failover-mode: must be one of "manual", "automatic", got "sometimes"` + "\n"},
	} {
		p := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(p, []byte(tc.json), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, tc.name+"-out")
		stdout, stderr, code := runCmd(t, "slapos", "render", "--parameters", p, "--out", out)
		if code != 1 || stderr != tc.want || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", tc.name, code, stdout, stderr, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: output written for a bad request", tc.name)
		}
	}
	_, stderr, code := runCmd(t, "slapos", "render", "--parameters", filepath.Join(dir, "missing.json"), "--out", dir)
	if code != 1 || !strings.Contains(stderr, "missing.json") {
		t.Errorf("missing file: %d %q", code, stderr)
	}
}

// TestSlaposRenderInputs: the command decodes SlapOS' serialised parameters, reports a
// mistyped key with a suggestion and duplicate keys with their position, refuses a FIFO or
// an oversized file instead of hanging or exhausting memory, and prints no credential.
func TestSlaposRenderInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain, err := os.ReadFile(slaposRequest)
	if err != nil {
		t.Fatal(err)
	}
	quoted, _ := json.Marshal(string(plain))
	out := filepath.Join(dir, "out")
	stdout, stderr, code := runCmd(t, "slapos", "render", "--parameters", write("ser.json", `{"_": `+string(quoted)+`}`), "--out", out)
	if code != 0 || stderr != "" || !strings.Contains(stdout, "cluster1: databases [[::1]:2099 [::1]:2199 [::1]:2299 [::1]:2399]") {
		t.Fatalf("serialised: %d\n%s\n%s", code, stdout, stderr)
	}
	b, _ := os.ReadFile(filepath.Join(out, "partition-credentials.json"))
	var creds []slapos.NodeCredential
	if err := json.Unmarshal(b, &creds); err != nil || len(creds) != 5 {
		t.Fatalf("partition-credentials.json: %v %s", err, b)
	}
	for _, c := range creds {
		if len(c.Credential) != 64 || strings.Contains(stdout+stderr, c.Credential) {
			t.Fatalf("credential of %s missing or printed", c.Address)
		}
	}
	for _, tc := range []struct{ name, body, want string }{
		{"typo", `{"repman-cluster-dic": {"cluster1": {}}}`, `repman-cluster-dic: unknown parameter; did you mean "repman-cluster-dict"?` + "\n"},
		{"dup", "{\"repman-cluster-dict\": {},\n \"repman-cluster-dict\": {}}", `duplicate key "repman-cluster-dict" at line 2, column 2 (byte offset 29)` + "\n"},
		{"utf8", "{\"mail-to\": \"\xff\"}", "invalid UTF-8 at line 1, column 14 (byte offset 13)\n"},
	} {
		_, stderr, code := runCmd(t, "slapos", "render", "--parameters", write(tc.name+".json", tc.body), "--out", out)
		if code != 1 || stderr != tc.want {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.name, code, stderr, tc.want)
		}
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, stderr, code := runCmd(t, "slapos", "render", "--parameters", fifo, "--out", out)
		if code != 1 || !strings.Contains(stderr, "fifo.json: not a regular file") {
			t.Errorf("fifo: %d %q", code, stderr)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("render hangs on a FIFO")
	}
	big := write("big.json", `{"mail-to": "`+strings.Repeat("x", 5<<20)+`"}`)
	if _, stderr, code := runCmd(t, "slapos", "render", "--parameters", big, "--out", out); code != 1 || !strings.Contains(stderr, "larger than") {
		t.Errorf("big: %d %q", code, stderr)
	}
}
