package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/proxysql"
)

// TestProxyInstallAsSlapOSLaysItOut: the manager's ProxySQL bundle goes where SlapOS' repman
// software puts it (tarball and cnf), the TLS files where proxysql.cnf and ProxySQL read
// them, and Install tells whether anything changed.
func TestProxyInstallAsSlapOSLaysItOut(t *testing.T) {
	root := t.TempDir()
	l := ProxyLayout{Root: root, Cluster: "c1"}
	mk := func(pw string) []byte {
		p := configurator.ProxyParams{
			ProxySQL: proxysql.ConfigParams{Datadir: root, SSLDir: filepath.Join(root, "etc", "proxysql", "ssl"),
				AdminUser: "admin", AdminPassword: pw, AdminPort: 6032, Port: 7032, BindIPv4: "10.0.0.5", BindIPv6: "[2001:db8::5]",
				MonitorUser: "repman", MonitorPassword: "m", Servers: []ipv6.HostPort{{Host: "2001:db8::10", Port: 2099}},
				Hostgroups: proxysql.Hostgroups{Writer: 10, Reader: 20, Offline: 9999}, Tags: []string{proxysql.TagSSL}},
			TLS:  &configurator.TLSFiles{CA: []byte("ca"), ClientCert: []byte("cc"), ClientKey: []byte("ck"), ServerCert: []byte("sc"), ServerKey: []byte("sk")},
			Time: time.Unix(0, 0),
		}
		b, err := configurator.ProxyBundle(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := mk("pw1")
	changed, err := l.Install(b)
	if err != nil || !changed {
		t.Fatalf("first install: changed %v, %v", changed, err)
	}
	if got, _ := os.ReadFile(l.Tarball()); !bytes.Equal(got, b) {
		t.Fatal("the tarball is not kept in tmp/config/proxies")
	}
	want := map[string]string{
		l.Cnf(): "", filepath.Join(l.SSLDir(), proxysql.CAFile): "ca", filepath.Join(l.SSLDir(), "client-key.pem"): "ck",
		filepath.Join(l.DataDir(), "proxysql-cert.pem"): "sc", filepath.Join(l.DataDir(), "proxysql-key.pem"): "sk",
	}
	for p, content := range want {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("not installed: %v", err)
		}
		if content != "" && string(got) != content {
			t.Fatalf("%s: %q, want %q", p, got, content)
		}
	}
	for _, p := range []string{l.Cnf(), l.Tarball(), filepath.Join(l.DataDir(), "proxysql-key.pem")} {
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	// The admin interface binds the IPv6 only with proxysql-admin-bind-ipv6 (or a loopback).
	wantL := []ipv6.HostPort{{Host: "10.0.0.5", Port: 6032},
		{Host: "2001:db8::5", Port: 7032}, {Host: "10.0.0.5", Port: 7032}}
	if got := l.Listeners(); !reflect.DeepEqual(got, wantL) {
		t.Fatalf("listeners %v, want %v", got, wantL)
	}
	if changed, err := l.Install(b); err != nil || changed {
		t.Fatalf("same bundle again: changed %v, %v", changed, err)
	}
	if changed, err := l.Install(mk("pw2")); err != nil || !changed {
		t.Fatalf("new password: changed %v, %v", changed, err)
	}
	if _, err := l.Install(bundle(t, "[mysqld]\n")); err == nil {
		t.Fatal("a database bundle was installed as a ProxySQL's")
	}
}

func TestParseSupervisorStatus(t *testing.T) {
	for _, c := range []struct {
		out   string
		state string
		pid   int
		bad   bool
	}{
		{"proxysql-c1                      RUNNING   pid 4242, uptime 0:00:05\n", "running", 4242, false},
		{"proxysql-c1                      STOPPED   Dec 02 03:48 AM\n", "stopped", 0, false},
		{"proxysql-c1                      EXITED    Dec 02 03:48 AM\n", "stopped", 0, false},
		{"proxysql-c1                      BACKOFF   Exited too quickly (process log may have details)\n", "crashed", 0, false},
		{"proxysql-c1                      STARTING  \n", "starting", 0, false},
		{"proxysql-c1: ERROR (no such process)\n", "", 0, true},
		{"unix:///tmp/x.sock no such file\n", "", 0, true},
		{"proxysql-c10                     RUNNING   pid 1, uptime 0:00:05\n", "", 0, true},
	} {
		st, err := parseSupervisorStatus("proxysql-c1", []byte(c.out))
		if (err != nil) != c.bad || st.State != c.state || st.Pid != c.pid {
			t.Errorf("%q: %+v %v", c.out, st, err)
		}
	}
}
