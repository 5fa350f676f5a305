package slapos

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func watchAs(t *testing.T, f *fakeFleet, base, path string) (int, WatchAnswer, string) {
	t.Helper()
	code, body := getAs(t, f, base, path)
	var a WatchAnswer
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("watch answer %q: %v", body, err)
		}
	}
	return code, a, body
}

// TestWatchHandsOverOnce: the watch route answers the node's pending actions once, in order,
// and then nothing; a stop only for a running node; anonymous callers and other nodes'
// credentials get 401 even with the legacy anonymous routes on.
func TestWatchHandsOverOnce(t *testing.T) {
	srv, f, _ := newServer(t)
	f.c.Settings.SlapOSLegacyAnonymousRoutes = true
	ctx := context.Background()
	p := f.o.Placement()
	master, failed := p.Databases[0].Addr, p.Databases[2].Addr
	path := "cluster1/servers/" + master.HostBracketed() + "/2099/watch?wait=0"
	url := srv.URL + "/api/clusters/" + path

	if code, body := get(t, url); code != http.StatusUnauthorized {
		t.Fatalf("anonymous watch: %d %s", code, body)
	}
	other := credFor(t, f, "cluster1/servers/"+failed.HostBracketed()+"/2299/watch")
	if code, _ := getAuth(t, url, "Bearer "+other); code != http.StatusUnauthorized {
		t.Fatalf("another node's credential: %d", code)
	}
	if code, a, body := watchAs(t, f, srv.URL+"/api/clusters/", path); code != 200 || len(a.Actions) != 0 || !a.Running || a.Kind != "database" {
		t.Fatalf("idle watch: %d %s", code, body)
	}
	n, _ := f.o.Node(master)
	for _, ck := range []Cookie{CookieWaitStart, CookieRestart, CookieConfig, CookieWaitStop, CookieProv} {
		if err := n.Set(ck); err != nil {
			t.Fatal(err)
		}
	}
	code, a, body := watchAs(t, f, srv.URL+"/api/clusters/", path)
	want := []string{WatchConfigChange, WatchStop, WatchRestart, WatchStart}
	if code != 200 || len(a.Actions) != len(want) {
		t.Fatalf("watch: %d %s, want actions %v", code, body, want)
	}
	for i := range want {
		if a.Actions[i] != want[i] {
			t.Fatalf("actions %v, want %v", a.Actions, want)
		}
	}
	if len(a.Cookies) != 1 || a.Cookies[0] != string(CookieProv) {
		t.Fatalf("cookies left %v, want [cookie_prov]", a.Cookies)
	}
	if code, a, _ := watchAs(t, f, srv.URL+"/api/clusters/", path); code != 200 || len(a.Actions) != 0 {
		t.Fatalf("second watch: %d %v", code, a.Actions)
	}
	// The legacy route sees the start consumed too.
	if code, _ := getAs(t, f, srv.URL+"/api/clusters/", "cluster1/servers/"+master.HostBracketed()+"/2099/need-start"); code != 500 {
		t.Fatalf("need-start after the watch took the start: %d", code)
	}

	// A stop for a node the manager sees down stays pending; its start is handed over.
	fp := "cluster1/servers/" + failed.HostBracketed() + "/2299/watch?wait=0"
	fn, _ := f.o.Node(failed)
	fn.Set(CookieWaitStop)
	if err := f.o.StartDatabase(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if code, a, body := watchAs(t, f, srv.URL+"/api/clusters/", fp); code != 200 || len(a.Actions) != 1 || a.Actions[0] != WatchStart || a.Running {
		t.Fatalf("failed node: %d %s", code, body)
	}
	if !fn.Has(CookieWaitStop) {
		t.Fatal("the stop of a node that is down was consumed")
	}
	if code, body := getAs(t, f, srv.URL+"/api/clusters/", "cluster1/servers/"+master.HostBracketed()+"/2099/watch?wait=x"); code != 400 {
		t.Fatalf("bad wait: %d %s", code, body)
	}
}

// TestWatchWakesOnCookie: a waiting watch answers when the orchestrator publishes a start,
// long before its wait ends.
func TestWatchWakesOnCookie(t *testing.T) {
	srv, f, _ := newServer(t)
	master := f.o.Placement().Databases[0].Addr
	path := "cluster1/servers/" + master.HostBracketed() + "/2099/watch?wait=30"
	type res struct {
		code int
		a    WatchAnswer
		body string
		took time.Duration
	}
	ch := make(chan res, 1)
	start := time.Now()
	go func() {
		code, body := getAs(t, f, srv.URL+"/api/clusters/", path)
		var a WatchAnswer
		json.Unmarshal([]byte(body), &a)
		ch <- res{code, a, body, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond) // the watch is waiting
	if err := f.o.StartDatabase(context.Background(), master); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.code != 200 || len(r.a.Actions) != 1 || r.a.Actions[0] != WatchStart {
			t.Fatalf("watch: %d %s", r.code, r.body)
		}
		if r.took > 15*time.Second {
			t.Fatalf("the watch answered after %v: it waited for its timeout, not for the cookie", r.took)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the watch did not answer")
	}
}
