package main

import (
	"strings"
	"testing"

	"replication-manager-pro/api"
)

func TestTreeOrderDrawsDepth(t *testing.T) {
	srv := func(host, port, srcHost, srcPort string) api.DBServer {
		s := api.DBServer{URL: host + ":" + port, Host: host, Port: port}
		if srcHost != "" {
			s.Replications = []api.Replication{{MasterHost: srcHost, MasterPort: srcPort}}
		}
		return s
	}
	// Listed in configuration order: leaf first, then master, relay, a direct replica,
	// an IPv6 leaf whose source is written differently.
	servers := []api.DBServer{
		srv("10.0.0.3", "3306", "10.0.0.2", "3306"),
		srv("10.0.0.1", "3306", "", ""),
		srv("10.0.0.2", "3306", "10.0.0.1", "3306"),
		srv("10.0.0.4", "3306", "10.0.0.1", "3306"),
		srv("[2001:db8::5]", "3306", "2001:DB8::4", "3306"),
		srv("[2001:db8::4]", "3306", "10.0.0.3", "3306"),
	}
	order, indent := treeOrder(servers)
	var lines []string
	for k, i := range order {
		lines = append(lines, indent[k]+servers[i].URL)
	}
	want := strings.Join([]string{
		"10.0.0.1:3306",
		"└ 10.0.0.2:3306",
		"  └ 10.0.0.3:3306",
		"    └ [2001:db8::4]:3306",
		"      └ [2001:db8::5]:3306",
		"└ 10.0.0.4:3306",
	}, "\n")
	if got := strings.Join(lines, "\n"); got != want {
		t.Fatalf("tree\n%s\nwant\n%s", got, want)
	}
	// A cycle is printed once per server, not forever.
	cyc := []api.DBServer{srv("a", "1", "b", "1"), srv("b", "1", "a", "1")}
	if order, _ := treeOrder(cyc); len(order) != 2 {
		t.Fatalf("cycle order %v", order)
	}
}
