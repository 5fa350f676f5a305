package proxysql

import (
	"context"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/proxysql/proxysqltest"
	"replication-manager-pro/topology"
)

// The unit tests of this package run the Router and the Admin client against
// proxysqltest.AdminDouble, a fast test double of ProxySQL's admin interface; the real_*,
// tls and contract tests (package proxysql_test) run them on a real ProxySQL.

var (
	addrA = ipv6.HostPort{Host: "10.0.0.1", Port: 3306}
	addrB = ipv6.HostPort{Host: "2001:db8::2", Port: 3306} // IPv6: sent unbracketed
	addrC = ipv6.HostPort{Host: "10.0.0.3", Port: 3306}
	addrD = ipv6.HostPort{Host: "10.0.0.4", Port: 3306}
)

func startDouble(t *testing.T, opt proxysqltest.Options) *proxysqltest.AdminDouble {
	t.Helper()
	d, err := proxysqltest.Start(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.Out = io.Discard
	return logrus.NewEntry(l)
}

func testOptions(d *proxysqltest.AdminDouble) Options {
	return Options{
		Cluster:             "c1",
		Admin:               AdminConfig{Addr: d.Addr(), User: "admin", Password: "admin", CallTimeout: 5 * time.Second},
		Hostgroups:          Hostgroups{Writer: 0, Reader: 1, Offline: DefaultOfflineHostgroup},
		Rows:                RowDefaults{Weight: 100, MaxConnections: 1000, MaxReplicationLag: 30, Comment: "c1"},
		Read:                ReadPolicy{OnMasterNoSlave: true},
		Manage:              true,
		BootstrapHostgroups: true,
		SaveToDisk:          true,
		Log:                 quietLog(),
	}
}

func newRouter(t *testing.T, d *proxysqltest.AdminDouble, mutate func(*Options)) *Router {
	t.Helper()
	o := testOptions(d)
	if mutate != nil {
		mutate(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// server builds a reachable server; a replica replicates from source.
func server(addr ipv6.HostPort, st topology.State, source *ipv6.HostPort) topology.Server {
	s := topology.Server{ID: topology.ServerIDFor(addr), Addr: addr, State: st, Reachable: true, ReadOnly: source != nil}
	if source != nil {
		s.Role = topology.RoleReplica
		s.Replications = []topology.Replication{{Source: *source, IO: topology.ThreadYes, SQL: topology.ThreadYes}}
	} else if st == topology.StateMaster {
		s.Role = topology.RoleMaster
	} else {
		s.Role = topology.RoleStandalone
	}
	return s
}

func snapshot(master int, servers ...topology.Server) *topology.Snapshot {
	return &topology.Snapshot{Cluster: "c1", Servers: servers, Master: master, Kind: topology.KindMasterSlave}
}

// snapA: A master, B and C replicas, D standalone.
func snapA() *topology.Snapshot {
	return snapshot(0,
		server(addrA, topology.StateMaster, nil),
		server(addrB, topology.StateSlave, &addrA),
		server(addrC, topology.StateSlave, &addrA),
		server(addrD, topology.StateStandAlone, nil),
	)
}

const (
	selRuntime  = "SELECT " + serverColumns + " FROM runtime_mysql_servers"
	selConfig   = "SELECT " + serverColumns + " FROM mysql_servers"
	selRHG      = "SELECT writer_hostgroup, reader_hostgroup, comment FROM mysql_replication_hostgroups"
	selRuntRHG  = "SELECT writer_hostgroup, reader_hostgroup, comment FROM runtime_mysql_replication_hostgroups"
	loadServers = "LOAD MYSQL SERVERS TO RUNTIME"
	saveServers = "SAVE MYSQL SERVERS TO DISK"
)

func put(hg int, host string, status string, lag int) string {
	return "REPLACE INTO mysql_servers (" + serverColumns + ") VALUES (" +
		itoa(hg) + ", '" + host + "', 3306, '" + status + "', 100, 0, 1000, " + itoa(lag) + ", 0, 'c1')"
}

func del(hg int, host string) string {
	return "DELETE FROM mysql_servers WHERE hostgroup_id = " + itoa(hg) + " AND hostname = '" + host + "' AND port = 3306"
}

func itoa(n int) string { return strconv.Itoa(n) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// routing dumps a servers table as "hg host status" lines.
func routing(d *proxysqltest.AdminDouble, table string) []string {
	return d.Dump(table, "hostgroup_id", "hostname", "status")
}
