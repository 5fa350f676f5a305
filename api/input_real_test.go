package api

import (
	"net/http"
	"strings"
	"testing"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// TestMalformedSwitchoverFormChangesNothing reproduces issue 11 item 3 on a real cluster: a
// switchover whose form does not parse (a bad percent escape in prefmaster) used to be run
// as a switchover to the default candidate, answered 200. It must be a 400 naming the field,
// the master unchanged; a well-formed prefmaster still works.
func TestMalformedSwitchoverFormChangesNothing(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr())
	}
	dir := t.TempDir()
	e := newEnv(t, dir, writeConfig(t, dir, "", realCluster("c1", hosts, "")), nil)
	tok := e.login("admin", apiPassword)
	waitStates(t, e, "c1", topology.StateMaster, topology.StateSlave, topology.StateSlave)
	form := "application/x-www-form-urlencoded"
	for _, body := range []string{
		"prefmaster=" + hosts[2] + "%",                       // the prober's request
		"prefmaster=" + hosts[2] + "&prefmaster=" + hosts[1], // given twice
		"prefmaster=" + hosts[2] + "&dryRun=tru",             // a bool that is not one
		"prefmastre=" + hosts[2],                             // a misspelt field
		"prefmaster=" + strings.Repeat("x", 2<<20),           // 2 MiB
	} {
		r := e.do("POST", "/api/clusters/c1/actions/switchover", tok, strings.NewReader(body), "Content-Type", form)
		short := body
		if len(short) > 80 {
			short = short[:80] + "..."
		}
		if r.code != http.StatusBadRequest && r.code != http.StatusRequestEntityTooLarge {
			t.Errorf("switchover with %q: %d %.200q, want 400 or 413", short, r.code, r.body)
		}
		m, _ := e.fleet.Get("c1")
		if snap := m.Monitor.Snapshot(); snap.Master != 0 {
			t.Fatalf("switchover with %q moved the master to %s", short, snap.Servers[snap.Master].Addr)
		}
	}
	r := e.do("POST", "/api/clusters/c1/actions/switchover", tok, strings.NewReader("prefmaster="+hosts[2]), "Content-Type", form)
	if r.code != 200 {
		t.Fatalf("well-formed switchover: %d %s", r.code, r.body)
	}
	waitStates(t, e, "c1", topology.StateSlave, topology.StateSlave, topology.StateMaster)
}
