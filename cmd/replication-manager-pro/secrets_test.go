package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/config"
)

// keygen and password make hash_ secrets the configuration decrypts; the clear secret is
// read from standard input, never from the command line, and never printed by config check.
func TestHashSecretCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if _, errs, code := runCmd(t, "keygen", "--keypath", key); code != 0 {
		t.Fatalf("keygen: %d %s", code, errs)
	}
	if _, _, code := runCmd(t, "keygen", "--keypath", key); code != 1 {
		t.Fatalf("keygen over an existing key: %d", code)
	}
	if _, _, code := runCmd(t, "password", "DbS3cret"); code != 2 {
		t.Fatalf("a secret on the command line: %d", code)
	}
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader("DbS3cret\n"))
	root.SetArgs([]string{"password", "--keypath", key})
	if err := root.Execute(); err != nil || !strings.HasPrefix(out.String(), config.HashPrefix) {
		t.Fatalf("password: %v %q %s", err, out.String(), errb.String())
	}
	hash := strings.TrimSpace(out.String())
	cfgPath := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgPath, []byte("[Default]\nmonitoring-key-path = \""+key+"\"\n[c1]\ndb-servers-hosts = \"127.0.0.1:3306\"\ndb-servers-credential = \"root:"+hash+"\"\n"), 0o600)
	cfg, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cfg.Cluster("c1"); c.Settings.DBServersCredential != "root:DbS3cret" {
		t.Fatal("hash_ secret not decrypted")
	}
	o, errs, code := runCmd(t, "config", "check", "--config", cfgPath)
	if code != 0 || strings.Contains(o+errs, "DbS3cret") || strings.Contains(o+errs, hash) {
		t.Fatalf("config check: %d\n%s%s", code, o, errs)
	}
}
