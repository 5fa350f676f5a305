package slapos

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/tenant"
)

const sharedRequest = `{
  "repman-cluster-dict": {"alpha": {"database-amount": 2, "tags": ["gtidstrict", "ssl"], "proxy-tags": ["masterslave", "ssl"]},
                          "beta": {"database-amount": 2}},
  "slave_instance_list": [
    {"slave_reference": "SOFTINST-1", "slave_title": "blog", "db_password": "p'w\\\"x", "cluster-id": "beta"},
    {"slave_reference": "SOFTINST-2", "cluster-id": "nope", "db_charset": "utf8mb4_bin", "require_ssl": "false"},
    {"slave_reference": "wordpress", "_": "{\"db_charset\": \"latin1\", \"cluster-id\": \"alpha\"}", "slap_software_type": "default"}
  ]
}`

// slave_instance_list is rendered into databases.json (the PUT body of each cluster) and
// published-databases.json (per reference, SlapOS' url and url_v4 through the root
// partition's ProxySQL); generated passwords stay across renders.
func TestRenderSharedInstances(t *testing.T) {
	req := mustRequest(t, sharedRequest)
	if len(req.SharedInstances) != 3 {
		t.Fatalf("shared instances %+v", req.SharedInstances)
	}
	out := t.TempDir()
	res, err := Render(req, RenderOptions{OutDir: out, Root: Partition{IPv4: "10.0.0.5", IPv6: "2001:db8::5"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DatabasesFile, PublishedDatabasesFile, tenantSecretsFile} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
		if !contains(res.Files, f) {
			t.Errorf("%s not among the written files %v", f, res.Files)
		}
	}
	var doc DatabasesDoc
	readJSON(t, filepath.Join(out, DatabasesFile), &doc)
	refs := func(c string) (out []string) {
		for _, e := range doc[c].Databases {
			out = append(out, e.Reference)
		}
		return out
	}
	// cluster-id beta; an unknown cluster-id goes to the first cluster (alpha).
	if got := strings.Join(refs("alpha"), ","); got != "SOFTINST-2,wordpress" {
		t.Fatalf("alpha: %s", got)
	}
	if got := strings.Join(refs("beta"), ","); got != "SOFTINST-1" {
		t.Fatalf("beta: %s", got)
	}
	if e := doc["beta"].Databases[0]; e.DBPassword != `p'w\"x` || !e.RequireSSL {
		t.Fatalf("SOFTINST-1: %+v", e)
	}
	if e := doc["alpha"].Databases[0]; e.RequireSSL || e.DBCharset != "utf8mb4_bin" || len(e.DBPassword) != 20 {
		t.Fatalf("SOFTINST-2: %+v", e)
	}
	var pub map[string]tenant.Published
	readJSON(t, filepath.Join(out, PublishedDatabasesFile), &pub)
	p := pub["SOFTINST-1"]
	n := tenant.NamesFor("SOFTINST-1")
	if p.Cluster != "beta" || p.Database != n.Database || p.User != n.User {
		t.Fatalf("SOFTINST-1 published %+v", p)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if u.Hostname() != "2001:db8::5" || u.Port() != "7033" || pw != `p'w\"x` || u.Path != "/"+n.Database {
		t.Fatalf("url %s", p.URL)
	}
	if !strings.HasPrefix(pub["wordpress"].URLv4, "mysql://wordpress:") || !strings.HasSuffix(pub["wordpress"].URLv4, "@10.0.0.5:7032/db_wordpress") {
		t.Fatalf("wordpress url_v4 %s", pub["wordpress"].URLv4)
	}
	// The ssl tags (SlapOS' defaults include them): each cluster's CA is published, the one
	// the daemon uses for that cluster's certificates.
	for ref, c := range map[string]string{"wordpress": "alpha", "SOFTINST-1": "beta"} {
		ca, err := os.ReadFile(filepath.Join(out, "var", "lib", c, "ca-cert.pem"))
		if err != nil || !strings.Contains(string(ca), "BEGIN CERTIFICATE") || string(ca) != pub[ref].SSLCA {
			t.Fatalf("%s: CA not its cluster's (%s): %v", ref, c, err)
		}
	}
	if pub["wordpress"].SSLCA == pub["SOFTINST-1"].SSLCA {
		t.Fatal("two clusters share a CA")
	}

	// A second render keeps every password, even when db_password changes: the daemon set
	// the first one at creation and keeps it.
	req2 := mustRequest(t, strings.Replace(sharedRequest, `"p'w\\\"x"`, `"changed"`, 1))
	if _, err := Render(req2, RenderOptions{OutDir: out, Root: Partition{IPv4: "10.0.0.5", IPv6: "2001:db8::5"}}); err != nil {
		t.Fatal(err)
	}
	var pub2 map[string]tenant.Published
	readJSON(t, filepath.Join(out, PublishedDatabasesFile), &pub2)
	for ref := range pub {
		if pub2[ref].URL != pub[ref].URL {
			t.Errorf("%s: url changed across renders", ref)
		}
	}
	// A reference no longer listed leaves its cluster's list (the PUT then removes it).
	req3 := mustRequest(t, `{"repman-cluster-dict": {"alpha": {"database-amount": 2}, "beta": {"database-amount": 2}}, "slave_instance_list": []}`)
	if _, err := Render(req3, RenderOptions{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	readJSON(t, filepath.Join(out, DatabasesFile), &doc)
	if len(doc["alpha"].Databases) != 0 || len(doc["beta"].Databases) != 0 {
		t.Fatalf("databases.json after the list emptied: %+v", doc)
	}
}

// Hostile or malformed shared instances are refused, each on a line naming the entry; the
// render writes nothing.
func TestRenderRefusesBadSharedInstances(t *testing.T) {
	for _, c := range []struct{ list, want string }{
		{`[{"slave_reference": "x'; DROP DATABASE mysql; --"}]`, "slave_instance_list[0]: slave_reference"},
		{`[{"slave_reference": "../../x"}]`, "slave_instance_list[0]: slave_reference"},
		{`[{"slave_reference": "` + strings.Repeat("x", 300) + `"}]`, "300 characters"},
		{`[{"slave_reference": "ünï"}]`, "slave_reference"},
		{`[{"slave_reference": "mysql"}]`, "reserved"},
		{`[{"slave_reference": "ok", "db_charset": "klingon"}]`, "slave_instance_list[0] (ok): db_charset"},
		{`[{"slave_reference": "ok", "require_ssl": "sometimes"}]`, "require_ssl"},
		{`[{"slave_reference": "ok"}, {"slave_reference": "ok"}]`, "also in entry 0"},
		{`[{"slave_title": "no ref"}]`, "slave_reference: missing"},
		{`[{"slave_reference": 7}]`, "want a string"},
		{`{"a": 1}`, "want a list"},
		{`[{"slave_reference": "ok", "_": "{not json"}]`, "_: want a string holding a JSON object"},
	} {
		out := t.TempDir()
		_, _, err := ParseRequest([]byte(`{"repman-cluster-dict": {"c1": {"database-amount": 2}}, "slave_instance_list": ` + c.list + `}`))
		var re *RequestError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s: %v, want a line with %q", c.list, err, c.want)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("files written")
		}
	}
	// The same list from its own file (render --shared-instances).
	if _, err := ReadSharedInstances([]byte(`[{"slave_reference": "../x"}]`)); err == nil {
		t.Fatal("file: hostile reference accepted")
	}
	si, err := ReadSharedInstances([]byte(`{"slave_instance_list": [{"slave_reference": "SOFTINST-4"}]}`))
	if err != nil || len(si) != 1 || si[0].Reference != "SOFTINST-4" {
		t.Fatalf("%+v %v", si, err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
