package router

import (
	"strings"
	"testing"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

var (
	mAddr = ipv6.HostPort{Host: "10.0.0.1", Port: 3306}
	rAddr = ipv6.HostPort{Host: "2001:db8::2", Port: 3306}
	oAddr = ipv6.HostPort{Host: "10.0.0.3", Port: 3306}
)

func lag(n int64) *int64 { return &n }

// srv builds a reachable server in a state; replicas replicate from the master, caught up.
func srv(addr ipv6.HostPort, st topology.State) topology.Server {
	s := topology.Server{ID: topology.ServerIDFor(addr), Addr: addr, State: st, Reachable: true}
	switch st {
	case topology.StateMaster:
		s.Role = topology.RoleMaster
	case topology.StateStandAlone, topology.StateUnknown:
		s.Role = topology.RoleStandalone
	default:
		s.Role = topology.RoleReplica
		s.ReadOnly = true
		s.Replications = []topology.Replication{{Source: mAddr, IO: topology.ThreadYes, SQL: topology.ThreadYes, Lag: lag(0)}}
	}
	if st == topology.StateSuspect || st == topology.StateFailed {
		s.Reachable = false
	}
	return s
}

// snap: the master at index 0 (unless master < 0), then the server under test at index 1,
// then a healthy replica at index 2.
func snap(master int, m, x topology.Server) *topology.Snapshot {
	return &topology.Snapshot{Cluster: "c1", Master: master, Kind: topology.KindMasterSlave,
		Servers: []topology.Server{m, x, srv(oAddr, topology.StateSlave)}}
}

func TestIntentForServerStates(t *testing.T) {
	with := func(st topology.State, f func(*topology.Server)) topology.Server {
		s := srv(rAddr, st)
		if f != nil {
			f(&s)
		}
		return s
	}
	master := srv(mAddr, topology.StateMaster)
	for _, c := range []struct {
		name   string
		x      topology.Server
		opt    IntentOptions
		want   Route
		reason string // a substring of the reason
	}{
		{"Slave", with(topology.StateSlave, nil), IntentOptions{}, Reader, "replica"},
		{"Relay", with(topology.StateRelay, func(s *topology.Server) { s.Role = topology.RoleRelay }), IntentOptions{}, Reader, "relay"},
		{"Slave lag within the bound", with(topology.StateSlave, func(s *topology.Server) { s.Replications[0].Lag = lag(30) }), IntentOptions{MaxReplicationLag: 30}, Reader, "replica"},
		{"Slave lag over the bound", with(topology.StateSlave, func(s *topology.Server) { s.Replications[0].Lag = lag(31) }), IntentOptions{MaxReplicationLag: 30}, Drained, "lagging 31 s"},
		{"Slave lag, no bound", with(topology.StateSlave, func(s *topology.Server) { s.Replications[0].Lag = lag(3600) }), IntentOptions{}, Reader, "replica"},
		{"Relay lag over the bound", with(topology.StateRelay, func(s *topology.Server) { s.Replications[0].Lag = lag(99) }), IntentOptions{MaxReplicationLag: 30}, Drained, "lagging 99 s"},
		{"second channel lags", with(topology.StateSlave, func(s *topology.Server) {
			s.Replications = append(s.Replications, topology.Replication{Channel: "b", Source: oAddr, IO: topology.ThreadYes, SQL: topology.ThreadYes, Lag: lag(40)})
		}), IntentOptions{MaxReplicationLag: 30}, Drained, "lagging 40 s"},
		{"SlaveLate", with(topology.StateSlaveLate, nil), IntentOptions{}, Drained, "SlaveLate"},
		{"RelayLate", with(topology.StateRelayLate, nil), IntentOptions{}, Drained, "RelayLate"},
		{"SlaveErr", with(topology.StateSlaveErr, nil), IntentOptions{}, Drained, "replication stopped"},
		{"RelayErr", with(topology.StateRelayErr, nil), IntentOptions{}, Drained, "replication stopped"},
		{"Suspect", with(topology.StateSuspect, nil), IntentOptions{}, Drained, "suspect"},
		{"ErrorAuth", with(topology.StateErrorAuth, nil), IntentOptions{}, Drained, "credentials"},
		{"Failed", with(topology.StateFailed, nil), IntentOptions{}, Offline, "failed"},
		{"StandAlone", with(topology.StateStandAlone, nil), IntentOptions{}, Offline, "standalone"},
		{"unknown state", with(topology.StateUnknown, nil), IntentOptions{}, Offline, "nothing known"},
		{"a second Master", with(topology.StateMaster, nil), IntentOptions{}, Offline, "not the cluster's master"},
		{"Maintenance state, replicating", with(topology.StateMaintenance, func(s *topology.Server) { s.Maintenance = true }), IntentOptions{}, Drained, "maintenance"},
		{"Maintenance state only", with(topology.StateMaintenance, nil), IntentOptions{}, Drained, "maintenance"},
		{"Maintenance, standalone", with(topology.StateMaintenance, func(s *topology.Server) { s.Replications = nil }), IntentOptions{}, Offline, "standalone"},
		{"operator maintenance", with(topology.StateSlave, nil), IntentOptions{Maintenance: []ipv6.HostPort{{Host: "[2001:db8::2]", Port: 3306}}}, Drained, "maintenance"},
		{"maintenance of a failed replica", with(topology.StateFailed, func(s *topology.Server) { s.Maintenance = true }), IntentOptions{}, Offline, "failed"},
		{"ignored", with(topology.StateSlave, func(s *topology.Server) { s.Ignored = true }), IntentOptions{}, Offline, "ignored"},
		{"ignored in maintenance", with(topology.StateMaintenance, func(s *topology.Server) { s.Ignored, s.Maintenance = true, true }), IntentOptions{}, Offline, "ignored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := IntentFor(snap(0, master, c.x), c.opt)
			got := in.Servers[1]
			if got.Route != c.want || !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("route %s (%q), want %s (%q)", got.Route, got.Reason, c.want, c.reason)
			}
			if got.Master || got.Addr != c.x.Addr {
				t.Fatalf("intent %+v", got)
			}
			if m := in.Servers[0]; m.Route != Writer || !m.Master {
				t.Fatalf("master %+v", m)
			}
			if o := in.Servers[2]; o.Route != Reader {
				t.Fatalf("healthy replica %+v", o)
			}
		})
	}
}

func TestIntentForMaster(t *testing.T) {
	m := func(st topology.State, f func(*topology.Server)) topology.Server {
		s := srv(mAddr, st)
		s.Role, s.ReadOnly, s.Replications = topology.RoleMaster, false, nil
		if f != nil {
			f(&s)
		}
		return s
	}
	replica := srv(rAddr, topology.StateSlave)
	for _, c := range []struct {
		name   string
		m      topology.Server
		opt    IntentOptions
		want   Route
		maint  bool
		reason string
	}{
		{"Master", m(topology.StateMaster, nil), IntentOptions{}, Writer, false, "master"},
		{"Suspect keeps the writes", m(topology.StateSuspect, nil), IntentOptions{}, Writer, false, "suspect"},
		{"Failed keeps the writes", m(topology.StateFailed, nil), IntentOptions{}, Writer, false, "failed"},
		{"ErrorAuth keeps the writes", m(topology.StateErrorAuth, nil), IntentOptions{}, Writer, false, "credentials"},
		{"ignored master still writes", m(topology.StateMaster, func(s *topology.Server) { s.Ignored = true }), IntentOptions{}, Writer, false, "master"},
		{"Maintenance drains", m(topology.StateMaintenance, func(s *topology.Server) { s.Maintenance = true }), IntentOptions{}, Drained, true, "maintenance"},
		{"operator maintenance drains", m(topology.StateMaster, nil), IntentOptions{Maintenance: []ipv6.HostPort{mAddr}}, Drained, true, "maintenance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := IntentFor(snap(0, c.m, replica), c.opt)
			got, ok := in.MasterIntent()
			if !ok || got.Route != c.want || !got.Master || got.Maintenance != c.maint || !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("master intent %+v (%v), want %s (%q)", got, ok, c.want, c.reason)
			}
		})
	}
}

func TestIntentForWriterReads(t *testing.T) {
	master := srv(mAddr, topology.StateMaster)
	healthy := srv(rAddr, topology.StateSlave)
	broken := srv(rAddr, topology.StateSlaveErr)
	lagging := srv(rAddr, topology.StateSlave)
	lagging.Replications[0].Lag = lag(60)
	noReader := func(x topology.Server) *topology.Snapshot {
		s := snap(0, master, x)
		s.Servers[2] = srv(oAddr, topology.StateFailed)
		return s
	}
	for _, c := range []struct {
		name string
		s    *topology.Snapshot
		opt  IntentOptions
		want bool
	}{
		{"replicas read", snap(0, master, healthy), IntentOptions{ReadOnMasterNoSlave: true}, false},
		{"read on master", snap(0, master, healthy), IntentOptions{ReadOnMaster: true}, true},
		{"no reader: master reads", noReader(broken), IntentOptions{ReadOnMasterNoSlave: true}, true},
		{"lagging replica is no reader", noReader(lagging), IntentOptions{ReadOnMasterNoSlave: true, MaxReplicationLag: 30}, true},
		{"no reader, rule off", noReader(broken), IntentOptions{}, false},
		{"no master", snap(-1, srv(mAddr, topology.StateStandAlone), healthy), IntentOptions{ReadOnMaster: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := IntentFor(c.s, c.opt).WriterReads; got != c.want {
				t.Fatalf("writer reads = %v, want %v", got, c.want)
			}
		})
	}
}

func TestIntentForNoMaster(t *testing.T) {
	s := snap(-1, srv(mAddr, topology.StateStandAlone), srv(rAddr, topology.StateSlave))
	in := IntentFor(s, IntentOptions{ReadOnMaster: true})
	if _, ok := in.MasterIntent(); ok || in.Master != -1 {
		t.Fatalf("a master in %+v", in)
	}
	for i, want := range []Route{Offline, Reader, Reader} {
		if got := in.Servers[i]; got.Route != want || got.Master {
			t.Errorf("server %d: %+v, want %s", i, got, want)
		}
	}
	if in := IntentFor(nil, IntentOptions{}); in.Master != -1 || len(in.Servers) != 0 {
		t.Fatalf("nil snapshot: %+v", in)
	}
	if in := IntentFor(&topology.Snapshot{Master: 3}, IntentOptions{}); in.Master != -1 {
		t.Fatalf("master index out of range: %+v", in)
	}
}

func TestIntentFind(t *testing.T) {
	in := IntentFor(snap(0, srv(mAddr, topology.StateMaster), srv(rAddr, topology.StateSlave)), IntentOptions{})
	if got, ok := in.Find(ipv6.HostPort{Host: "[2001:DB8::2]", Port: 3306}); !ok || got.Addr != rAddr {
		t.Fatalf("find: %+v %v", got, ok)
	}
	if _, ok := in.Find(ipv6.HostPort{Host: "10.0.0.9", Port: 3306}); ok {
		t.Fatal("found an unknown server")
	}
	if in.Readers() != 2 {
		t.Fatalf("readers %d", in.Readers())
	}
}

func TestWriterTakesReads(t *testing.T) {
	for _, c := range []struct {
		opt     IntentOptions
		readers int
		want    bool
	}{
		{IntentOptions{}, 0, false},
		{IntentOptions{ReadOnMaster: true}, 3, true},
		{IntentOptions{ReadOnMasterNoSlave: true}, 0, true},
		{IntentOptions{ReadOnMasterNoSlave: true}, 1, false},
	} {
		if got := c.opt.WriterTakesReads(c.readers); got != c.want {
			t.Errorf("%+v with %d readers: %v", c.opt, c.readers, got)
		}
	}
}
