package slapos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/config"
)

// TestPublishedParameters: what `slapos publish` writes from a render with shared
// instances: the output schema's keys (the password only in the file), each cluster's
// proxy on both families with TLS and its CA when the proxy tag ssl asks, and the shared
// instances' URLs as published-databases.json has them.
func TestPublishedParameters(t *testing.T) {
	req := mustRequest(t, sharedRequest)
	out := t.TempDir()
	if _, err := Render(req, RenderOptions{OutDir: out, Root: Partition{IPv4: "10.0.0.5", IPv6: "2001:db8::5"}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WritePublished(out, cfg, ""); err != nil {
		t.Fatal(err)
	}
	p, err := WritePublished(out, cfg, "") // again: replaces the file
	if err != nil {
		t.Fatal(err)
	}
	users, _ := cfg.Default.APIUsers()
	if p.BackendURL != "https://10.0.0.5:10005" || p.URL != p.BackendURL || p.Username != "admin" || p.RepmanPassword != users[0].Password {
		t.Fatalf("instance parameters: %+v", p)
	}
	alpha, beta := p.Clusters["alpha"], p.Clusters["beta"]
	if alpha.Proxy != "proxysql" || alpha.ProxyIPv6 != "[2001:db8::5]:7032" || alpha.ProxyIPv4 != "10.0.0.5:7032" || !alpha.TLS ||
		!strings.Contains(alpha.SSLCA, "BEGIN CERTIFICATE") || len(alpha.Databases) != 2 {
		t.Fatalf("alpha: %+v", alpha)
	}
	if beta.ProxyIPv6 != "[2001:db8::5]:7033" {
		t.Fatalf("beta (second cluster: the next port): %+v", beta)
	}
	if refs := strings.Join(p.SharedReferences(), ","); refs != "SOFTINST-1,SOFTINST-2,wordpress" {
		t.Fatalf("shared instances %s", refs)
	}
	if u := p.Shared["SOFTINST-1"].URL; !strings.HasPrefix(u, "mysql://softinst1:") || !strings.Contains(u, "@[2001:db8::5]:7033/db_softinst_1") {
		t.Fatalf("SOFTINST-1 url %q", u)
	}
	st, err := os.Stat(filepath.Join(out, PublishedFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", PublishedFile, st, err)
	}
	var back Published
	b, _ := os.ReadFile(filepath.Join(out, PublishedFile))
	if err := json.Unmarshal(b, &back); err != nil || back.RepmanPassword == "" || back.Clusters["alpha"].ProxyIPv6 == "" {
		t.Fatalf("file: %v %+v", err, back)
	}
	// The API's version carries no password.
	if q, _ := PublishedFor(cfg, "[2001:db8::5]:9443", false); q.RepmanPassword != "" || q.BackendURL != "https://[2001:db8::5]:9443" {
		t.Fatalf("without password: %+v", q)
	}
}
