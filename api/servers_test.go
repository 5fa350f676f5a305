package api

import (
	"testing"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// TestFindHostServerForms: the host routes (is-master, is-slave) find a server by any form of
// its host, as ipv6.SameHost compares them.
func TestFindHostServerForms(t *testing.T) {
	snap := &topology.Snapshot{Master: 0, Servers: []topology.Server{
		{Addr: ipv6.HostPort{Host: "2001:db8::10", Port: 3306}},
		{Addr: ipv6.HostPort{Host: "db2.example.org", Port: 3306}},
		{Addr: ipv6.HostPort{Host: "127.0.0.1", Port: 3307}},
	}}
	for _, tc := range []struct {
		host, port string
		want       int // index, -1 for none
	}{
		{"[2001:db8::10]", "", 0},
		{"2001:DB8::10", "3306", 0},
		{"[2001:db8:0:0:0:0:0:10]", "3306", 0},
		{"2001:db8::10", "3307", -1},
		{"DB2.example.ORG", "", 1},
		{"::ffff:127.0.0.1", "3307", 2},
		{"localhost", "3307", -1},
		{"[db2.example.org]", "", -1},
	} {
		srv, ok := findHostServer(snap, tc.host, tc.port)
		switch {
		case tc.want < 0 && ok:
			t.Errorf("findHostServer(%q, %q) = %s, want none", tc.host, tc.port, srv.Addr)
		case tc.want >= 0 && (!ok || srv != &snap.Servers[tc.want]):
			t.Errorf("findHostServer(%q, %q) = %v, %v; want server %d", tc.host, tc.port, srv, ok, tc.want)
		}
	}
}

// TestWithoutSameAddr: removing a server from a host list removes it however it is written.
func TestWithoutSameAddr(t *testing.T) {
	l, err := ipv6.ParseList("[2001:DB8::10]:3306,DB2:3306,db3:3306", 3306)
	if err != nil {
		t.Fatal(err)
	}
	got := ipv6.FormatList(without(without(l, ipv6.HostPort{Host: "2001:db8::10", Port: 3306}), ipv6.HostPort{Host: "db2", Port: 3306}))
	if got != "db3:3306" {
		t.Fatalf("without = %q, want db3:3306", got)
	}
}
