package slapos

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// Issue 11 items 1 and 2: without a partition credential nobody may consume a one-shot
// request or download a bundle (both used to be served to anyone).
func TestAnonymousPartitionRoutesRefused(t *testing.T) {
	srv, f, _ := newServer(t)
	o := f.o
	db := o.Placement().Databases[0].Addr
	if err := o.StartDatabase(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/api/clusters/cluster1/servers/[2001:db8::10]/2099/"
	for _, action := range []string{"need-start", "need-stop", "need-config-change", "need-restart", "config"} {
		code, body := get(t, base+action)
		if code != http.StatusUnauthorized || !strings.Contains(body, "Authorization: Bearer") || !strings.Contains(body, "Partition credential required") {
			t.Errorf("anonymous %s: %d %q", action, code, body)
		}
	}
	for _, action := range []string{"need-rolling-restart", "need-rolling-reprov"} {
		if code, body := get(t, srv.URL+"/api/clusters/cluster1/"+action); code != http.StatusUnauthorized {
			t.Errorf("anonymous %s: %d %q", action, code, body)
		}
	}
	n, _ := o.Node(db)
	if !n.Has(CookieWaitStart) {
		t.Fatal("an anonymous request consumed the start meant for the partition")
	}
}
