package slapos

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

// testCluster is cluster1 of SlapOS' example with three databases on IPv6 and one ProxySQL.
func testCluster(t *testing.T) *config.Cluster {
	t.Helper()
	s := config.Defaults()
	s.MonitoringDatadir = t.TempDir()
	s.ProvOrchestrator = Name
	s.DBServersHosts = "[2001:db8::10]:2099,[2001:db8::11]:2199,[2001:db8::12]:2299"
	s.SlapOSDBPartitions = "/srv/slapgrid/slappart10,/srv/slapgrid/slappart11,/srv/slapgrid/slappart12"
	s.ProxySQL = true
	s.ProxySQLServers = "10.0.74.165"
	s.ProxySQLAdminPort = 6032
	s.ProxySQLPort = 7032
	s.ProxySQLServersIPv6 = "[2001:db8::5]"
	s.SlapOSProxySQLPartitions = "/srv/slapgrid/slappart7"
	return &config.Cluster{Name: "cluster1", Settings: s}
}

// newOrch builds the cluster's orchestrator with a recording shutdown.
func newOrch(t *testing.T, c *config.Cluster) *Orchestrator {
	t.Helper()
	o, err := New(c, Options{Log: quiet(), Shutdown: func(context.Context, ipv6.HostPort, *topology.Snapshot) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func node(t *testing.T, o *Orchestrator, addr string) Node {
	t.Helper()
	n, err := o.Node(hp(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func hp(t *testing.T, s string) ipv6.HostPort {
	t.Helper()
	a, err := ipv6.ParseHostPort(s, 3306)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCookies(t *testing.T) {
	c := testCluster(t)
	n := node(t, newOrch(t, c), "[2001:db8::10]:2099")
	want := filepath.Join(c.Settings.MonitoringDatadir, "cluster1", "[2001:db8::10]_2099")
	if n.Dir != want {
		t.Fatalf("node dir %s, want %s", n.Dir, want)
	}
	if n.Has(CookieWaitStart) {
		t.Fatal("fresh node has a cookie")
	}
	if err := n.Set(CookieWaitStart); err != nil {
		t.Fatal(err)
	}
	if err := n.Set(CookieWaitStart); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(want, "@cookie_waitstart")); err != nil {
		t.Fatalf("cookie file: %v", err)
	}
	if !n.Has(CookieWaitStart) {
		t.Fatal("cookie not seen")
	}
	l, _ := n.Cookies()
	if len(l) != 1 || l[0] != CookieWaitStart {
		t.Fatalf("Cookies = %v", l)
	}
	// One-shot: of many concurrent takers exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := n.Take(CookieWaitStart); err == nil && ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d takers won", wins.Load())
	}
	if err := n.Delete(CookieWaitStart); err != nil {
		t.Fatalf("delete of an absent cookie: %v", err)
	}
	if err := n.Set(Cookie("../evil")); err == nil {
		t.Fatal("bad cookie name accepted")
	}
	if _, err := NodeIn(t.TempDir(), "../x", hp(t, "db:1")); err == nil {
		t.Fatal("cluster name with a slash accepted")
	}
}

func TestWorkingDir(t *testing.T) {
	s := config.Defaults()
	s.MonitoringDatadir = "/var/lib/repman"
	if got := WorkingDir(&s); got != "/var/lib/repman" {
		t.Fatal(got)
	}
	s.MonitoringBasedir = "/srv/repman"
	if got := WorkingDir(&s); got != "/srv/repman/data" {
		t.Fatal(got)
	}
}

func TestPlace(t *testing.T) {
	c := testCluster(t)
	p, err := Place(c)
	if err != nil {
		t.Fatal(err)
	}
	for k, db := range p.Databases {
		want := []string{"/srv/slapgrid/slappart10", "/srv/slapgrid/slappart11", "/srv/slapgrid/slappart12"}[k]
		if db.Partition != want || db.Index != k {
			t.Errorf("db %d: %+v, want partition %s", k, db, want)
		}
	}
	px := p.Proxies[0]
	if px.Partition != "/srv/slapgrid/slappart7" || px.IPv6Bind != "[2001:db8::5]" || px.Addr.String() != "10.0.74.165:6032" {
		t.Errorf("proxy %+v", px)
	}
	// Fewer partitions than hosts: the last ones have none.
	c.Settings.SlapOSDBPartitions = "/p0"
	p, _ = Place(c)
	if p.Databases[0].Partition != "/p0" || p.Databases[1].Partition != "" {
		t.Errorf("short list: %+v", p.Databases)
	}
	c.Settings.SlapOSDBPartitions = "/a,/b,/c,/d"
	if _, err := Place(c); err == nil {
		t.Error("more partitions than hosts accepted")
	}
}

// TestNewValidates: the configuration is checked once, when the cluster's orchestrator is
// built, and the error names the cluster, the orchestrator and the key.
func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		edit func(*config.Settings)
		want string
	}{
		{func(s *config.Settings) { s.SlapOSDBPartitions = "/a,/b,/c,/d" }, "slapos-db-partitions: 4 partitions for 3 db-servers-hosts"},
		{func(s *config.Settings) { s.MonitoringDatadir = "" }, "monitoring-datadir: empty"},
		{func(s *config.Settings) { s.DBServersCredential = "" }, "db-servers-credential: "},
		{func(s *config.Settings) { s.DBServersHosts = "[2001:db8::10" }, "db-servers-hosts: "},
	} {
		c := testCluster(t)
		tc.edit(&c.Settings)
		_, err := orchestrator.New(c, orchestrator.Deps{Log: quiet()})
		if want := "cluster cluster1: prov-orchestrator slapos: " + tc.want; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("New = %v, want an error starting with %q", err, want)
		}
	}
	o, err := orchestrator.New(testCluster(t), orchestrator.Deps{Log: quiet()})
	if err != nil || o.Name() != Name {
		t.Fatalf("New = %v, %v", o, err)
	}
	if got := o.Placement(); len(got.Databases) != 3 || got.Databases[2].Partition != "/srv/slapgrid/slappart12" {
		t.Fatalf("placement %+v", got)
	}
}

func snapshotOf(c *config.Cluster, states ...topology.State) *topology.Snapshot {
	hosts, _ := c.Settings.Hosts()
	s := &topology.Snapshot{Cluster: c.Name, Master: 0}
	for i, h := range hosts {
		s.Servers = append(s.Servers, topology.Server{Addr: h, State: states[i], Reachable: !states[i].IsDown()})
	}
	return s
}

func TestIsProvisioned(t *testing.T) {
	c := testCluster(t)
	o := newOrch(t, c)
	up := topology.StateSlave
	// A database down: false, but the running one before it got its cookie.
	snap := snapshotOf(c, topology.StateMaster, topology.StateFailed, up)
	if ok, err := o.IsProvisioned(snap, nil); ok || err != nil {
		t.Fatalf("with a failed db: %v, %v", ok, err)
	}
	n0, n2 := node(t, o, "[2001:db8::10]:2099"), node(t, o, "[2001:db8::12]:2299")
	if !n0.Has(CookieProv) || n2.Has(CookieProv) {
		t.Fatal("cookies: want db0 set (checked before the failed one), db2 not")
	}
	// Proxy down: false.
	snap = snapshotOf(c, topology.StateMaster, up, up)
	down := func(orchestrator.Target) bool { return false }
	if ok, _ := o.IsProvisioned(snap, down); ok {
		t.Fatal("true with the proxy down")
	}
	// All running: true, every node has cookie_prov.
	if ok, err := o.IsProvisioned(snap, nil); !ok || err != nil {
		t.Fatalf("all up: %v, %v", ok, err)
	}
	// Cookies stay: true even when every node is down now.
	snap = snapshotOf(c, topology.StateFailed, topology.StateSuspect, topology.StateErrorAuth)
	if ok, _ := o.IsProvisioned(snap, down); !ok {
		t.Fatal("provisioned cluster forgot its cookies")
	}
	// Unprovision clears the cookie; the node is down: false. The address may be written
	// in another form of the same IPv6 address.
	if err := o.UnprovisionDatabase(context.Background(), hp(t, "[2001:DB8:0:0::11]:2199")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := o.IsProvisioned(snap, nil); ok {
		t.Fatal("true after an unprovision of a stopped db")
	}
	// No databases: false.
	c.Settings.DBServersHosts = ""
	c.Settings.SlapOSDBPartitions = ""
	if ok, _ := newOrch(t, c).IsProvisioned(nil, nil); ok {
		t.Fatal("true without databases")
	}
}

func TestOrchestratorCookies(t *testing.T) {
	var stopped []string
	c := testCluster(t)
	o, err := New(c, Options{Log: quiet(), Shutdown: func(_ context.Context, addr ipv6.HostPort, _ *topology.Snapshot) error {
		stopped = append(stopped, addr.String())
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := o.Placement()
	db, px := p.Databases[1].Addr, p.Proxies[0].Addr
	nd, np := node(t, o, db.String()), node(t, o, px.String())
	steps := []struct {
		do   func() error
		node Node
		want []Cookie
	}{
		{func() error { return o.ProvisionDatabase(ctx, db) }, nd, []Cookie{CookieProv}},
		{func() error { return o.StartDatabase(ctx, db) }, nd, []Cookie{CookieProv, CookieWaitStart}},
		{func() error { return o.UnprovisionDatabase(ctx, db) }, nd, []Cookie{CookieUnprov, CookieWaitStart}},
		{func() error { return o.ProvisionProxy(ctx, px) }, np, []Cookie{CookieProv}},
		{func() error { return o.StartProxy(ctx, px) }, np, []Cookie{CookieProv, CookieWaitStart}},
		{func() error { return o.StopProxy(ctx, px) }, np, []Cookie{CookieProv, CookieWaitStart, CookieWaitStop}},
		{func() error { return o.UnprovisionProxy(ctx, px) }, np, []Cookie{CookieUnprov, CookieWaitStart, CookieWaitStop}},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, _ := s.node.Cookies()
		if len(got) != len(s.want) {
			t.Fatalf("step %d: cookies %v, want %v", i, got, s.want)
		}
		for j := range got {
			if got[j] != s.want[j] {
				t.Fatalf("step %d: cookies %v, want %v", i, got, s.want)
			}
		}
	}
	// Another form of the address stops the configured server.
	if err := o.StopDatabase(ctx, hp(t, "[2001:DB8::0:11]:2199"), nil); err != nil || len(stopped) != 1 || stopped[0] != "[2001:db8::11]:2199" {
		t.Fatalf("stop: %v %v", err, stopped)
	}
	// A proxy is not a database, a database not a proxy, an unknown address neither.
	for _, err := range []error{
		o.StartDatabase(ctx, px), o.StartProxy(ctx, db), o.ProvisionDatabase(ctx, hp(t, "[2001:db8::99]:2099")),
	} {
		if !errors.Is(err, orchestrator.ErrUnknownNode) {
			t.Errorf("wrong kind or unknown node: %v", err)
		}
	}
	failing, err := New(c, Options{Shutdown: func(context.Context, ipv6.HostPort, *topology.Snapshot) error {
		return errors.New("boom")
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := failing.StopDatabase(ctx, db, nil); err == nil {
		t.Fatal("stop error lost")
	}
}

func TestEveryDatabaseHas(t *testing.T) {
	o := newOrch(t, testCluster(t))
	for i, db := range o.Placement().Databases {
		if all, err := o.EveryDatabaseHas(CookieRestart); all || err != nil {
			t.Fatalf("after %d of 3: %v, %v", i, all, err)
		}
		if err := node(t, o, db.Addr.String()).Set(CookieRestart); err != nil {
			t.Fatal(err)
		}
	}
	if all, err := o.EveryDatabaseHas(CookieRestart); !all || err != nil {
		t.Fatalf("all set: %v, %v", all, err)
	}
}

func TestRegistered(t *testing.T) {
	c := testCluster(t)
	c.Settings.ProvOrchestrator = "SlapOS"
	o, err := orchestrator.New(c, orchestrator.Deps{})
	if err != nil || o.Name() != Name {
		t.Fatalf("%v %v", o, err)
	}
}
