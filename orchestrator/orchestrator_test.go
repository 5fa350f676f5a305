package orchestrator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/orchestrator"
	"replication-manager-pro/topology"
)

func TestLookupUnknownListsKnown(t *testing.T) {
	_, err := orchestrator.Lookup("kubernetes")
	if err == nil {
		t.Fatal("unknown name accepted")
	}
	if !strings.Contains(err.Error(), `"kubernetes"`) || !strings.Contains(err.Error(), "onpremise") {
		t.Fatalf("error does not name the value and the known ones: %v", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of onpremise did not panic")
		}
	}()
	orchestrator.Register("OnPremise", func(orchestrator.Deps) (orchestrator.Orchestrator, error) { return orchestrator.OnPremise{}, nil })
}

func TestOnPremise(t *testing.T) {
	o, err := orchestrator.New("onpremise", orchestrator.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	c := &config.Cluster{Name: "c1", Settings: config.Defaults()}
	c.Settings.DBServersHosts = "" // even without databases
	ok, err := o.IsProvisioned(c, nil, nil)
	if !ok || err != nil {
		t.Fatalf("IsProvisioned = %v, %v; want true", ok, err)
	}
	ctx := context.Background()
	db := orchestrator.Target{Kind: orchestrator.KindDatabase, Addr: ipv6.HostPort{Host: "db1", Port: 3306}}
	if err := o.ProvisionDatabase(ctx, c, db); err != nil {
		t.Fatal(err)
	}
	if err := o.StartDatabase(ctx, c, db); !errors.Is(err, orchestrator.ErrNotSupported) {
		t.Fatalf("StartDatabase = %v, want ErrNotSupported", err)
	}
}

func TestTargetsAndFind(t *testing.T) {
	s := config.Defaults()
	s.DBServersHosts = "[2001:db8::10]:2099,[2001:db8::11]:2199,db3:3306"
	s.ProxySQL = true
	s.ProxySQLServers = "10.0.0.5"
	s.ProxySQLAdminPort = 6032
	s.ProxySQLServersIPv6 = "[2001:db8::5]"
	c := &config.Cluster{Name: "c1", Settings: s}
	p, err := orchestrator.Targets(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Databases) != 3 || len(p.Proxies) != 1 {
		t.Fatalf("placement %+v", p)
	}
	if px := p.Proxies[0]; px.Addr.String() != "10.0.0.5:6032" || px.IPv6Bind != "[2001:db8::5]" || px.Kind != orchestrator.KindProxySQL {
		t.Fatalf("proxy %+v", px)
	}
	for _, tc := range []struct {
		addr ipv6.HostPort
		want string
	}{
		{ipv6.HostPort{Host: "2001:DB8:0::11", Port: 2199}, "database [2001:db8::11]:2199"},
		{ipv6.HostPort{Host: "DB3", Port: 3306}, "database db3:3306"},
		{ipv6.HostPort{Host: "10.0.0.5", Port: 6032}, "proxysql 10.0.0.5:6032"},
		{ipv6.HostPort{Host: "10.0.0.5", Port: 3306}, ""},
	} {
		got, ok := p.Find(tc.addr)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("Find(%s) = %v, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
}

func TestShutdownStatement(t *testing.T) {
	for _, tc := range []struct {
		master  bool
		version string
		want    string
	}{
		{true, "10.11.6-MariaDB-0+deb12u1-log", "SHUTDOWN WAIT FOR ALL SLAVES"},
		{true, "10.4.0-MariaDB", "SHUTDOWN WAIT FOR ALL SLAVES"},
		{true, "10.3.39-MariaDB", "SHUTDOWN"},
		{false, "10.11.6-MariaDB", "SHUTDOWN"},
		{true, "8.0.36", "SHUTDOWN"},
		{true, "", "SHUTDOWN"},
	} {
		if got := orchestrator.ShutdownStatement(tc.master, mariadb.ParseVersion(tc.version)); got != tc.want {
			t.Errorf("master=%v %q: %q, want %q", tc.master, tc.version, got, tc.want)
		}
	}
}

func TestDatabaseRunning(t *testing.T) {
	a := ipv6.HostPort{Host: "::1", Port: 2099}
	snap := &topology.Snapshot{Master: -1, Servers: []topology.Server{{Addr: a, State: topology.StateSlave}}}
	if !orchestrator.DatabaseRunning(snap, a) {
		t.Fatal("slave not running")
	}
	for _, st := range []topology.State{topology.StateFailed, topology.StateSuspect, topology.StateErrorAuth, topology.StateUnknown} {
		snap.Servers[0].State = st
		if orchestrator.DatabaseRunning(snap, a) {
			t.Errorf("%q counted as running", st)
		}
	}
	if orchestrator.DatabaseRunning(nil, a) {
		t.Error("nil snapshot counted as running")
	}
}
