package api

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDeleteClusterAndCap reproduces issue 11 item 7's growth: actions/add had no limit and
// no route removed a cluster. Now at most monitoring-max-clusters run (409 naming the key),
// and /api/clusters/actions/delete/{c} stops one and forgets what the API kept about it.
func TestDeleteClusterAndCap(t *testing.T) {
	e := newDeadEnv(t, "monitoring-max-clusters = 3", nil)
	tok := e.login("admin", apiPassword)
	for _, c := range []string{"c2", "c3"} {
		if r := e.do("POST", "/api/clusters/actions/add/"+c, tok, nil); r.code != 200 {
			t.Fatalf("add %s: %d %q", c, r.code, r.body)
		}
	}
	r := e.do("POST", "/api/clusters/actions/add/c4", tok, nil)
	if r.code != http.StatusConflict || !strings.Contains(r.body, "monitoring-max-clusters") {
		t.Fatalf("add over the cap: %d %q", r.code, r.body)
	}
	foo := e.login("foo", "foo-pw")
	if r := e.do("POST", "/api/clusters/actions/delete/c2", foo, nil); r.code != http.StatusForbidden {
		t.Fatalf("delete without the grant: %d", r.code)
	}
	// Things the API keeps per cluster: its action lock, its cached object, metric series.
	if r := e.do("POST", "/api/clusters/c2/settings/actions/switch/failover-mode", tok, nil); r.code != 200 {
		t.Fatalf("switch on c2: %d %q", r.code, r.body)
	}
	e.do("GET", "/api/clusters/c2", tok, nil)
	if m := e.do("GET", "/metrics", "", nil).body; !strings.Contains(m, `cluster="c2"`) {
		t.Fatal("no c2 series before delete")
	}
	if r := e.do("DELETE", "/api/clusters/actions/delete/c2", tok, nil); r.code != 200 {
		t.Fatalf("delete c2: %d %q", r.code, r.body)
	}
	if r := e.do("GET", "/api/clusters/c2", tok, nil); r.code != http.StatusNotFound {
		t.Fatalf("c2 after delete: %d", r.code)
	}
	if r := e.do("POST", "/api/clusters/actions/delete/c2", tok, nil); r.code != http.StatusNotFound || r.body != "Cluster Not Found\n" {
		t.Fatalf("delete twice: %d %q", r.code, r.body)
	}
	if _, ok := e.srv.actionMu.Load("c2"); ok {
		t.Error("c2's action lock kept")
	}
	if m := e.do("GET", "/metrics", "", nil).body; strings.Contains(m, `cluster="c2"`) {
		t.Error("c2's metric series kept")
	}
	if r := e.do("POST", "/api/clusters/actions/add/c4", tok, nil); r.code != 200 {
		t.Fatalf("add after a delete: %d %q", r.code, r.body)
	}
	if r := e.do("POST", "/api/clusters/actions/delete/c1?x=1", tok, nil); r.code != http.StatusBadRequest {
		t.Fatalf("delete with an unknown field: %d", r.code)
	}
	if r := e.do("POST", "/api/clusters/actions/delete/..", tok, nil); r.code != http.StatusBadRequest {
		t.Fatalf("delete of a bad name: %d", r.code)
	}
}

// TestAddDeleteReleasesEverything: 300 clusters added and deleted leave the goroutine count
// near its baseline and no per-cluster state in the API; with the default cap of 64 running,
// /api/clusters stays small and quick.
func TestAddDeleteReleasesEverything(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	time.Sleep(300 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("leak%d", i)
		if r := e.do("POST", "/api/clusters/actions/add/"+name, tok, nil); r.code != 200 {
			t.Fatalf("add %s: %d %q", name, r.code, r.body)
		}
		e.do("GET", "/api/clusters/"+name, tok, nil)
		if r := e.do("POST", "/api/clusters/actions/delete/"+name, tok, nil); r.code != 200 {
			t.Fatalf("delete %s: %d %q", name, r.code, r.body)
		}
	}
	var now int
	for deadline := time.Now().Add(15 * time.Second); ; {
		now = runtime.NumGoroutine()
		if now <= base+5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d after 300 add/delete", base, now)
	if now > base+5 {
		t.Errorf("goroutines: %d before, %d after 300 add/delete", base, now)
	}
	cached := 0
	e.srv.cache.Range(func(any, any) bool { cached++; return true })
	locks := 0
	e.srv.actionMu.Range(func(any, any) bool { locks++; return true })
	if cached > 1 || locks > 1 {
		t.Errorf("API keeps %d cached clusters and %d locks for 1 running cluster", cached, locks)
	}

	// Up to the default cap (64), then the list.
	for i := 2; ; i++ {
		r := e.do("POST", fmt.Sprintf("/api/clusters/actions/add/cap%d", i), tok, nil)
		if r.code == http.StatusConflict {
			break
		}
		if r.code != 200 || i > 100 {
			t.Fatalf("add cap%d: %d %q", i, r.code, r.body)
		}
	}
	if n := len(e.fleet.Members()); n != 64 {
		t.Fatalf("%d clusters run, want the default cap 64", n)
	}
	start := time.Now()
	r := e.do("GET", "/api/clusters", tok, nil)
	took := time.Since(start)
	t.Logf("/api/clusters with 64 clusters: %d bytes in %v", len(r.body), took)
	if r.code != 200 || len(r.body) > 2<<20 || took > 5*time.Second {
		t.Errorf("/api/clusters with 64 clusters: %d, %d bytes in %v", r.code, len(r.body), took)
	}
}
