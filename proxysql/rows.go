package proxysql

import (
	"fmt"

	"replication-manager-pro/ipv6"
)

// Status is a backend's status in mysql_servers.
type Status string

// The statuses ProxySQL knows. SHUNNED is set by ProxySQL itself (health checks, lag);
// OFFLINE_SOFT drains a backend gracefully; OFFLINE_HARD drops its connections.
const (
	StatusOnline      Status = "ONLINE"
	StatusShunned     Status = "SHUNNED"
	StatusOfflineSoft Status = "OFFLINE_SOFT"
	StatusOfflineHard Status = "OFFLINE_HARD"
)

// Valid reports one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusOnline, StatusShunned, StatusOfflineSoft, StatusOfflineHard:
		return true
	}
	return false
}

// ServerRow is one row of mysql_servers (or runtime_mysql_servers): a backend in a hostgroup.
// Host is unbracketed ("2001:db8::1"), as ProxySQL wants it.
type ServerRow struct {
	Hostgroup         int
	Host              string
	Port              int
	Status            Status
	Weight            int
	Compression       int
	MaxConnections    int
	MaxReplicationLag int
	UseSSL            bool
	Comment           string
}

// Addr returns the row's backend address.
func (r ServerRow) Addr() ipv6.HostPort { return ipv6.HostPort{Host: r.Host, Port: r.Port} }

// key identifies a row: (hostgroup, host, port) is mysql_servers' primary key.
func (r ServerRow) key() rowKey { return rowKey{r.Hostgroup, r.Host, r.Port} }

// String is a compact form for logs and test output: "hg=0 10.0.0.1:3306 ONLINE".
func (r ServerRow) String() string {
	return fmt.Sprintf("hg=%d %s %s", r.Hostgroup, r.Addr(), r.Status)
}

type rowKey struct {
	hg   int
	host string
	port int
}

func (k rowKey) addr() ipv6.HostPort { return ipv6.HostPort{Host: k.host, Port: k.port} }

// ReplicationHostgroup is one row of mysql_replication_hostgroups: ProxySQL's monitor moves
// the servers of these two hostgroups between them according to their read_only.
type ReplicationHostgroup struct {
	Writer  int
	Reader  int
	Comment string
}

// User is one row of mysql_users. Password is a mysql_native_password hash ("*<40 hex>") or a
// clear text password; String never shows it.
type User struct {
	Username         string
	Password         string
	DefaultHostgroup int
}

// String names the user without its password.
func (u User) String() string {
	return fmt.Sprintf("%s (default hostgroup %d)", u.Username, u.DefaultHostgroup)
}

// GoString keeps %#v free of the password too.
func (u User) GoString() string { return u.String() }
