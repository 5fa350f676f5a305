package api

import (
	"net/http/httptest"
	"testing"
)

// AuthorizedFor: a bundle download by user token needs a valid token of a user holding the
// grant under that cluster's settings; a user without it, or known only to another cluster,
// is refused (issue 11 item 1: any valid token used to download the admin credential).
func TestAuthorizedForChecksGrantAndCluster(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "monitoring-wait-retry = 3\n",
		clusterDef{name: "c1", hosts: deadHosts},
		clusterDef{name: "c2", hosts: deadHosts, extra: `api-credentials-external = "bob:bob-pw-123"` + "\n" +
			`api-credentials-acl-allow = "bob:prov"`})
	e := newEnv(t, dir, path, nil)
	m1, _ := e.fleet.Get("c1")
	m2, _ := e.fleet.Get("c2")
	c1, c2 := &m1.Config.Settings, &m2.Config.Settings
	for _, tc := range []struct {
		user, password string
		st             string
		want           bool
	}{
		{"admin", apiPassword, "c1", true}, // ACL words include prov
		{"dba", "dba-pw", "c1", false},     // cluster proxy db: no prov
		{"foo", "foo-pw", "c1", false},     // no grant at all
		{"bob", "bob-pw-123", "c2", true},  // prov in c2
		{"bob", "bob-pw-123", "c1", false}, // unknown to c1
		{"admin", apiPassword, "c2", false},
	} {
		tok := e.login(tc.user, tc.password)
		r := httptest.NewRequest("GET", "/api/clusters/"+tc.st+"/servers/127.0.0.1/1/config", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		st := c1
		if tc.st == "c2" {
			st = c2
		}
		if got := e.srv.AuthorizedFor(r, st, GrantProvConfig); got != tc.want {
			t.Errorf("%s on %s: %v, want %v", tc.user, tc.st, got, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	for _, h := range []string{"", "Bearer ", "Basic abc", "Bearer not.a.jwt"} {
		r.Header.Set("Authorization", h)
		if e.srv.AuthorizedFor(r, c1, GrantProvConfig) {
			t.Errorf("Authorization %q accepted", h)
		}
	}
	if e.srv.AuthorizedFor(r, nil, GrantProvConfig) {
		t.Error("nil settings")
	}
}
