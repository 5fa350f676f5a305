package proxysql

import (
	"errors"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/proxysql/proxysqltest"
	"replication-manager-pro/topology"
)

func TestRouterBootstrapAgainstDouble(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), []string{
		selRHG,
		"REPLACE INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (0, 1, 'c1')",
		selRuntime,
		selRuntRHG,
		selConfig,
		put(0, "10.0.0.1", "ONLINE", 0),
		put(1, "10.0.0.3", "ONLINE", 30),
		put(1, "2001:db8::2", "ONLINE", 30),
		put(666, "10.0.0.4", "OFFLINE_SOFT", 0),
		loadServers,
		saveServers,
	})
	want := []string{"0 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.4 OFFLINE_SOFT"}
	same(t, "runtime", routing(d, "runtime_mysql_servers"), want)
	same(t, "disk", routing(d, "disk.mysql_servers"), want)
	same(t, "replication hostgroups", d.Dump("runtime_mysql_replication_hostgroups", "writer_hostgroup", "reader_hostgroup", "comment"), []string{"0 1 c1"})

	// A second bootstrap (a restart of replication-manager) finds everything in place.
	d.ResetStatements()
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "writes of a second bootstrap", d.Writes(), nil)
}

func TestRouterReconcileIsIdempotent(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	if len(d.Writes()) == 0 {
		t.Fatal("first reconcile of an empty ProxySQL wrote nothing")
	}
	for i := 0; i < 2; i++ {
		d.ResetStatements()
		if err := r.Reconcile(ctx(t), snapA()); err != nil {
			t.Fatal(err)
		}
		same(t, "statements of an unchanged tick", d.Statements(), []string{selRuntime})
	}
}

func TestRouterNoMasterChangesNothing(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	s := snapA()
	s.Master = -1
	if err := r.Reconcile(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), nil)
}

func TestRouterFailover(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	d.ResetStatements()
	if err := r.Failover(ctx(t), addrA, addrB); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), []string{
		selConfig,
		del(0, "10.0.0.1"),
		del(1, "2001:db8::2"),
		put(0, "2001:db8::2", "ONLINE", 0),
		put(666, "10.0.0.1", "OFFLINE_SOFT", 0),
		loadServers,
		saveServers,
	})
	want := []string{"0 2001:db8::2 ONLINE", "1 10.0.0.3 ONLINE", "666 10.0.0.1 OFFLINE_SOFT", "666 10.0.0.4 OFFLINE_SOFT"}
	same(t, "runtime", routing(d, "runtime_mysql_servers"), want)

	// The monitor's next snapshot: B master, A dead (no replication: it stays offline).
	after := snapshot(1,
		server(addrA, topology.StateFailed, nil),
		server(addrB, topology.StateMaster, nil),
		server(addrC, topology.StateSlave, &addrB),
		server(addrD, topology.StateStandAlone, nil),
	)
	after.Servers[0].Reachable = false
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), after); err != nil {
		t.Fatal(err)
	}
	same(t, "reconcile after the failover", d.Writes(), nil)

	// A second Failover call (a retried step) changes nothing but reloads.
	d.ResetStatements()
	if err := r.Failover(ctx(t), addrA, addrB); err != nil {
		t.Fatal(err)
	}
	same(t, "retried failover", d.Writes(), []string{loadServers, saveServers})
	same(t, "runtime after retry", routing(d, "runtime_mysql_servers"), want)
}

func TestRouterSwitchover(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	if err := r.Failover(ctx(t), addrA, addrC); err != nil {
		t.Fatal(err)
	}
	same(t, "runtime after the switch", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.3 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.1 OFFLINE_SOFT", "666 10.0.0.4 OFFLINE_SOFT"})

	// The old master now replicates from C: the next tick makes it a reader.
	after := snapshot(2,
		server(addrA, topology.StateSlave, &addrC),
		server(addrB, topology.StateSlave, &addrC),
		server(addrC, topology.StateMaster, nil),
		server(addrD, topology.StateStandAlone, nil),
	)
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), after); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), []string{
		selRuntime, selRuntRHG, selConfig,
		del(666, "10.0.0.1"),
		put(1, "10.0.0.1", "ONLINE", 30),
		loadServers, saveServers,
	})
	same(t, "runtime", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.3 ONLINE", "1 10.0.0.1 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.4 OFFLINE_SOFT"})
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), after); err != nil {
		t.Fatal(err)
	}
	same(t, "second reconcile", d.Statements(), []string{selRuntime})
}

func TestRouterMaintenance(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	d.ResetStatements()
	if err := r.Maintenance(ctx(t), addrB, true); err != nil {
		t.Fatal(err)
	}
	same(t, "statements", d.Statements(), []string{
		selConfig,
		"UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE hostname = '2001:db8::2' AND port = 3306 AND hostgroup_id IN (1)",
		loadServers, saveServers,
	})
	same(t, "runtime", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 OFFLINE_SOFT", "666 10.0.0.4 OFFLINE_SOFT"})

	// The snapshot agrees (B in maintenance): nothing to correct; nor to repeat.
	s := snapA()
	s.Servers[1].Maintenance = true
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if err := r.Maintenance(ctx(t), addrB, true); err != nil {
		t.Fatal(err)
	}
	same(t, "writes", d.Writes(), nil)

	// A snapshot that does not show the maintenance (taken before the monitor stored it)
	// does not end it: only Maintenance off does.
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "writes of a snapshot without the maintenance", d.Writes(), nil)
	if err := r.Maintenance(ctx(t), addrB, false); err != nil {
		t.Fatal(err)
	}
	same(t, "writes", d.Writes(), []string{
		"UPDATE mysql_servers SET status = 'ONLINE' WHERE hostname = '2001:db8::2' AND port = 3306 AND hostgroup_id IN (1)",
		loadServers, saveServers,
	})
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "writes of the next tick", d.Writes(), nil)

	// Maintenance of the master drains its writer row too.
	if err := r.Maintenance(ctx(t), addrA, true); err != nil {
		t.Fatal(err)
	}
	if err := r.Maintenance(ctx(t), addrA, false); err != nil {
		t.Fatal(err)
	}
	same(t, "runtime", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.4 OFFLINE_SOFT"})
}

// ProxySQL's monitor moves servers by read_only; the Router must not undo those moves.
func TestRouterDoesNotFightReadOnlyMoves(t *testing.T) {
	for _, mode := range []struct {
		name string
		opt  proxysqltest.Options
	}{
		{"writer is not reader", proxysqltest.Options{WriterIsAlsoReader: proxysqltest.Bool(false)}},
		{"writer is also reader (ProxySQL's default)", proxysqltest.Options{}},
		{"monitor rewrites config (older versions)", proxysqltest.Options{MonitorRewritesConfig: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			d := startDouble(t, mode.opt)
			r := newRouter(t, d, nil)
			if err := r.Bootstrap(ctx(t), snapA()); err != nil {
				t.Fatal(err)
			}
			// The monitor checks every server: A writable, B and C read-only. D is outside
			// the pair (offline hostgroup), so its read_only does not matter.
			d.SimulateReadOnly("10.0.0.1", 3306, false)
			d.SimulateReadOnly("2001:db8::2", 3306, true)
			d.SimulateReadOnly("10.0.0.3", 3306, true)
			d.SimulateReadOnly("10.0.0.4", 3306, false)
			d.ResetStatements()
			if err := r.Reconcile(ctx(t), snapA()); err != nil {
				t.Fatal(err)
			}
			same(t, "writes with the monitor agreeing", d.Writes(), nil)

			// B becomes writable (someone cleared read_only): ProxySQL makes it a writer.
			// The snapshot shows it writable too: the fix is read_only, not the routing.
			d.SimulateReadOnly("2001:db8::2", 3306, false)
			s := snapA()
			s.Servers[1].ReadOnly = false
			d.ResetStatements()
			if err := r.Reconcile(ctx(t), s); err != nil {
				t.Fatal(err)
			}
			same(t, "writes with a writable replica", d.Writes(), nil)
			if got := routing(d, "runtime_mysql_servers"); !contains(got, "0 2001:db8::2 ONLINE") {
				t.Fatalf("the double did not move B: %v", got)
			}

			// The enforcement set read_only again; ProxySQL moves B back by itself.
			d.SimulateReadOnly("2001:db8::2", 3306, true)
			d.ResetStatements()
			if err := r.Reconcile(ctx(t), snapA()); err != nil {
				t.Fatal(err)
			}
			same(t, "writes after B is read-only again", d.Writes(), nil)
			live := liveRouting(d)
			if contains(live, "0 2001:db8::2") {
				t.Fatalf("B still a writer: %v", live)
			}
		})
	}
}

// A standalone writable server that ProxySQL made a writer is moved out of the pair: that
// contradicts the snapshot's master, and the monitor cannot take it back from there.
func TestRouterRemovesForeignWriter(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	// Someone loads D into the reader hostgroup (e.g. a hand-made proxysql.cnf) and the
	// monitor, seeing read_only=0, makes it a writer.
	for _, stmt := range []string{
		"REPLACE INTO mysql_servers (hostgroup_id, hostname, port) VALUES (1, '10.0.0.4', 3306)",
		"LOAD MYSQL SERVERS TO RUNTIME",
	} {
		if err := d.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	d.SimulateReadOnly("10.0.0.4", 3306, false)
	if got := liveRouting(d); !contains(got, "0 10.0.0.4") {
		t.Fatalf("the double did not make D a writer: %v", got)
	}
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "writes", d.Writes(), []string{del(1, "10.0.0.4"), loadServers, saveServers})
	same(t, "live runtime", liveRouting(d), []string{"0 10.0.0.1", "1 10.0.0.3", "1 2001:db8::2", "666 10.0.0.4"})
}

func TestRouterReadOnMaster(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, func(o *Options) { o.Read.OnMaster = true })
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "runtime", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.1 ONLINE", "1 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.4 OFFLINE_SOFT"})
	if err := r.Failover(ctx(t), addrA, addrB); err != nil {
		t.Fatal(err)
	}
	same(t, "runtime after failover", routing(d, "runtime_mysql_servers"),
		[]string{"0 2001:db8::2 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.1 OFFLINE_SOFT", "666 10.0.0.4 OFFLINE_SOFT"})
}

// A failing admin interface is retried within the failover budget; past it the move is
// left pending, the error says so, and the next Reconcile applies it (even without
// proxysql-bootstrap, when only Failover and Maintenance act).
func TestRouterFailoverRetriesThenLeavesPending(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, func(o *Options) { o.FailoverBudget = 300 * time.Millisecond })
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	d.FailNext("LOAD MYSQL SERVERS", errors.New("disk full"))
	if err := r.Failover(ctx(t), addrA, addrB); err != nil {
		t.Fatalf("a single failure was not retried: %v", err)
	}
	same(t, "runtime after a retried failover", liveRouting(d), []string{"0 2001:db8::2", "1 10.0.0.3", "666 10.0.0.1", "666 10.0.0.4"})

	r2 := newRouter(t, d, func(o *Options) { o.FailoverBudget = 300 * time.Millisecond; o.Manage = false })
	d.FailTimes("LOAD MYSQL SERVERS", -1, errors.New("disk full"))
	err := r2.Failover(ctx(t), addrB, addrC)
	if err == nil || !strings.Contains(err.Error(), "failover to 10.0.0.3:3306") || !strings.Contains(err.Error(), "load servers") ||
		!strings.Contains(err.Error(), "left pending, retried on every monitoring tick") {
		t.Fatalf("error %v", err)
	}
	if err := r2.Reconcile(ctx(t), snapA()); err == nil || !strings.Contains(err.Error(), "still pending") {
		t.Fatalf("reconcile with the failover still failing: %v", err)
	}
	d.ClearFailures()
	if err := r2.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "runtime once the retry went through", liveRouting(d), []string{"0 10.0.0.3", "1 10.0.0.3", "666 10.0.0.1", "666 10.0.0.4", "666 2001:db8::2"})
	d.ResetStatements()
	if err := r2.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "statements once applied", d.Statements(), nil)
}

func TestRouterWrongPasswordFails(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{Password: "right"})
	r := newRouter(t, d, func(o *Options) { o.Admin.Password = "wrong-secret" })
	err := r.Reconcile(ctx(t), snapA())
	if err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error %v", err)
	}
}

// liveRouting lists runtime rows ProxySQL routes to or keeps (OFFLINE_HARD ones left out),
// as "hg host".
func liveRouting(d *proxysqltest.AdminDouble) []string {
	var out []string
	for _, l := range d.Dump("runtime_mysql_servers", "hostgroup_id", "hostname", "status") {
		if strings.HasSuffix(l, " OFFLINE_HARD") {
			continue
		}
		out = append(out, l[:strings.LastIndexByte(l, ' ')])
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// The Router translates router.IntentFor: a failed replica leaves the reader hostgroup for
// the offline one, a lagging replica drains (OFFLINE_SOFT), and both come back as readers.
func TestRouterFollowsIntent(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	failed := snapA()
	failed.Servers[1].State, failed.Servers[1].Reachable = topology.StateFailed, false
	d.ResetStatements()
	if err := r.Reconcile(ctx(t), failed); err != nil {
		t.Fatal(err)
	}
	same(t, "failed replica", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "666 10.0.0.4 OFFLINE_SOFT", "666 2001:db8::2 OFFLINE_SOFT"})

	lagging := snapA()
	lag := int64(31)
	lagging.Servers[1].Replications[0].Lag = &lag
	if err := r.Reconcile(ctx(t), lagging); err != nil {
		t.Fatal(err)
	}
	same(t, "lagging replica", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 OFFLINE_SOFT", "666 10.0.0.4 OFFLINE_SOFT"})

	if err := r.Reconcile(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	same(t, "caught up", routing(d, "runtime_mysql_servers"),
		[]string{"0 10.0.0.1 ONLINE", "1 10.0.0.3 ONLINE", "1 2001:db8::2 ONLINE", "666 10.0.0.4 OFFLINE_SOFT"})
}

// A drained replica whose read_only ProxySQL's monitor acted on is not fought either: the
// router does not flap it between hostgroups every tick.
func TestRouterDoesNotFightReadOnlyMovesOfDrainedReplica(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	s := snapA()
	s.Servers[1].State, s.Servers[1].ReadOnly = topology.StateSlaveErr, false
	if err := r.Reconcile(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	d.SimulateReadOnly("2001:db8::2", 3306, false)
	if got := liveRouting(d); !contains(got, "0 2001:db8::2") {
		t.Fatalf("the double did not move B: %v", got)
	}
	for i := 0; i < 2; i++ {
		d.ResetStatements()
		if err := r.Reconcile(ctx(t), s); err != nil {
			t.Fatal(err)
		}
		same(t, "writes", d.Writes(), nil)
	}
}
