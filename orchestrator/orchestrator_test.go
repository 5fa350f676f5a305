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
	if !strings.Contains(err.Error(), `"kubernetes"`) || !strings.Contains(err.Error(), "onpremise") ||
		!errors.Is(err, orchestrator.ErrUnknownOrchestrator) {
		t.Fatalf("error does not name the value and the known ones: %v", err)
	}
	c := &config.Cluster{Name: "c1", Settings: config.Defaults()}
	c.Settings.ProvOrchestrator = "kube"
	if _, err := orchestrator.New(c, orchestrator.Deps{}); !errors.Is(err, orchestrator.ErrUnknownOrchestrator) ||
		!strings.Contains(err.Error(), "cluster c1") {
		t.Fatalf("New with an unregistered prov-orchestrator: %v", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("second Register of onpremise did not panic")
		}
	}()
	orchestrator.Register("OnPremise", func(c *config.Cluster, _ orchestrator.Deps) (orchestrator.Orchestrator, error) {
		return orchestrator.NewOnPremise(c)
	})
}

func TestOnPremise(t *testing.T) {
	c := &config.Cluster{Name: "c1", Settings: config.Defaults()}
	c.Settings.DBServersHosts = "db1:3306,[2001:db8::2]:3306"
	o, err := orchestrator.New(c, orchestrator.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Name() != orchestrator.OnPremiseName {
		t.Fatalf("Name %q", o.Name())
	}
	ok, err := o.IsProvisioned(nil, nil)
	if !ok || err != nil {
		t.Fatalf("IsProvisioned = %v, %v; want true", ok, err)
	}
	ctx := context.Background()
	if err := o.ProvisionDatabase(ctx, ipv6.HostPort{Host: "DB1", Port: 3306}); err != nil {
		t.Fatal(err)
	}
	if err := o.StartDatabase(ctx, ipv6.HostPort{Host: "2001:DB8:0::2", Port: 3306}); !errors.Is(err, orchestrator.ErrNotSupported) {
		t.Fatalf("StartDatabase = %v, want ErrNotSupported", err)
	}
	err = o.ProvisionDatabase(ctx, ipv6.HostPort{Host: "db9", Port: 3306})
	if !errors.Is(err, orchestrator.ErrUnknownNode) || !strings.Contains(err.Error(), "cluster c1: provision database db9:3306") {
		t.Fatalf("ProvisionDatabase of an unknown server = %v", err)
	}
	// The placement handed out is a copy.
	p := o.Placement()
	p.Databases[0].Addr.Host = "changed"
	if o.Placement().Databases[0].Addr.Host != "db1" {
		t.Fatal("Placement shares its slices")
	}
	// Even without databases an on-premise cluster is provisioned.
	c.Settings.DBServersHosts = ""
	o, err = orchestrator.New(c, orchestrator.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := o.IsProvisioned(nil, nil); !ok {
		t.Fatal("IsProvisioned without databases = false")
	}
}

// TestNewValidatesOnce: a bad configuration is refused when the orchestrator is built, with
// the cluster, the orchestrator and the key in the error.
func TestNewValidatesOnce(t *testing.T) {
	for _, tc := range []struct {
		edit func(*config.Settings)
		want string
	}{
		{func(s *config.Settings) { s.DBServersHosts = "db1:99999" }, "cluster c1: prov-orchestrator onpremise: db-servers-hosts: "},
		{func(s *config.Settings) { s.DBServersCredential = "nouser" }, "cluster c1: prov-orchestrator onpremise: db-servers-credential: "},
		{func(s *config.Settings) { s.ProxySQL, s.ProxySQLServers = true, "[::1" }, "cluster c1: prov-orchestrator onpremise: proxysql-servers: "},
	} {
		c := &config.Cluster{Name: "c1", Settings: config.Defaults()}
		c.Settings.DBServersHosts = "db1:3306"
		tc.edit(&c.Settings)
		_, err := orchestrator.New(c, orchestrator.Deps{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New = %v, want an error starting with %q", err, tc.want)
		}
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
	if len(p.Databases) != 3 || len(p.Proxies) != 1 || p.Cluster != "c1" {
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
		{ipv6.HostPort{Host: "[2001:db8::11]", Port: 2199}, "database [2001:db8::11]:2199"},
		{ipv6.HostPort{Host: "DB3", Port: 3306}, "database db3:3306"},
		{ipv6.HostPort{Host: "10.0.0.5", Port: 6032}, "proxysql 10.0.0.5:6032"},
		{ipv6.HostPort{Host: "::ffff:10.0.0.5", Port: 6032}, "proxysql 10.0.0.5:6032"},
		{ipv6.HostPort{Host: "10.0.0.5", Port: 3306}, ""},
	} {
		got, ok := p.Find(tc.addr)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("Find(%s) = %v, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
	if _, err := p.Database("stop", ipv6.HostPort{Host: "10.0.0.5", Port: 6032}); !errors.Is(err, orchestrator.ErrUnknownNode) {
		t.Errorf("Database of a proxy's address = %v", err)
	}
	if px, err := p.Proxy("stop", ipv6.HostPort{Host: "10.0.0.5", Port: 6032}); err != nil || px.Kind != orchestrator.KindProxySQL {
		t.Errorf("Proxy = %v, %v", px, err)
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
	if !orchestrator.DatabaseRunning(snap, a) || !orchestrator.DatabaseRunning(snap, ipv6.HostPort{Host: "0:0:0:0:0:0:0:1", Port: 2099}) {
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
