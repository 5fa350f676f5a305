package topology

import (
	"testing"

	"replication-manager-pro/ipv6"
)

func TestSnapshotFindUsesSameAddr(t *testing.T) {
	s := &Snapshot{Master: -1, Servers: []Server{
		{Addr: ipv6.HostPort{Host: "2001:db8::10", Port: 2099}},
		{Addr: ipv6.HostPort{Host: "db2.example.org", Port: 3306}},
		{Addr: ipv6.HostPort{Host: "127.0.0.1", Port: 3306}},
		{Addr: ipv6.HostPort{Host: "::1", Port: 3306}},
	}}
	for _, tc := range []struct {
		host string
		port int
		want int // index, -1 for none
	}{
		{"2001:db8::10", 2099, 0},
		{"2001:DB8:0:0::10", 2099, 0},
		{"[2001:db8::10]", 2099, 0},
		{"2001:db8::10", 2100, -1},
		{"DB2.Example.ORG", 3306, 1},
		{"::ffff:127.0.0.1", 3306, 2},
		{"0:0:0:0:0:0:0:1", 3306, 3},
		{"localhost", 3306, -1},
	} {
		srv, ok := s.Find(ipv6.HostPort{Host: tc.host, Port: tc.port})
		switch {
		case tc.want < 0 && ok:
			t.Errorf("Find(%s:%d) = %s, want none", tc.host, tc.port, srv.Addr)
		case tc.want >= 0 && (!ok || srv != &s.Servers[tc.want]):
			t.Errorf("Find(%s:%d) = %v, %v; want server %d", tc.host, tc.port, srv, ok, tc.want)
		}
	}
	var none *Snapshot
	if _, ok := none.Find(ipv6.HostPort{Host: "::1", Port: 3306}); ok {
		t.Error("nil snapshot found a server")
	}
}
