// Package haproxy routes a cluster's MySQL traffic through HAProxy: it generates haproxy.cfg
// (a write frontend to the master, a read frontend balanced over the replicas, each bound on
// IPv4 and IPv6), drives HAProxy's runtime API over its stats socket, and implements
// router.Router so failovers and switchovers move the writes at once.
//
// Every configured database has one slot (server line) in each backend, named by its
// replication-manager server id; routing changes only flip slots between ready, drain and
// maint, so a switch needs no reload and no address change. See docs/haproxy.md.
package haproxy

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// SocketName is the runtime API's unix socket inside the working directory.
const SocketName = "haproxy.sock"

// Settings is what the generator and the router need, taken from the haproxy-* and
// proxy-servers-* keys (SettingsFrom) or filled by hand.
type Settings struct {
	Cluster string          // names the proxies: "<cluster>-write", "<cluster>-read"
	Servers []ipv6.HostPort // db-servers-hosts: one slot per database in each backend

	WritePort int      // haproxy-write-port
	ReadPort  int      // haproxy-read-port
	WriteBind []string // haproxy-ip-write-bind: IPv4 addresses (or host names) to bind
	ReadBind  []string // haproxy-ip-read-bind
	IPv6      []string // haproxy-servers-ipv6 entry of this HAProxy: IPv6 addresses, bracketed or not, bound for both ports
	StatPort  int      // haproxy-stat-port: HTTP statistics page; 0 = none
	APIPort   int      // haproxy-api-port: runtime API over TCP on 127.0.0.1; 0 = none
	WorkDir   string   // holds the runtime API socket (SocketName)

	Rules Rules // read-on-master rules and replication lag bound

	MaxConn        int           // global maxconn; 0 = 4096
	BackendMaxConn int           // proxy-servers-backend-max-connections: maxconn of each server line; 0 = none
	CheckInterval  time.Duration // TCP health check interval; 0 = 1s
	ConnectTimeout time.Duration // timeout connect; 0 = 2s
	ClientTimeout  time.Duration // timeout client and server (idle MySQL sessions); 0 = 1h
}

// SettingsFrom reads the settings of the k-th HAProxy (k-th entry of haproxy-servers) of a
// cluster: its IPv6 bind is the k-th entry of haproxy-servers-ipv6; its working directory
// the k-th slapos-haproxy-partitions path when set, else <monitoring-datadir>/<cluster>/haproxy<k>.
func SettingsFrom(c *config.Cluster, k int) (Settings, error) {
	s := &c.Settings
	hosts, err := s.Hosts()
	if err != nil {
		return Settings{}, fmt.Errorf("cluster %s: db-servers-hosts: %w", c.Name, err)
	}
	out := Settings{
		Cluster:   c.Name,
		Servers:   hosts,
		WritePort: s.HAProxyWritePort,
		ReadPort:  s.HAProxyReadPort,
		WriteBind: s.List("haproxy-ip-write-bind"),
		ReadBind:  s.List("haproxy-ip-read-bind"),
		StatPort:  s.HAProxyStatPort,
		APIPort:   s.HAProxyAPIPort,
		WorkDir:   filepath.Join(s.MonitoringDatadir, c.Name, fmt.Sprintf("haproxy%d", k)),
		Rules: Rules{
			ReadOnMaster:        s.ProxyServersReadOnMaster,
			ReadOnMasterNoSlave: s.ProxyServersReadOnMasterNoSlave,
			MaxReplicationLag:   int64(s.ProxyServersBackendMaxReplicationLag),
		},
		BackendMaxConn: s.ProxyServersBackendMaxConnections,
	}
	if v6 := s.List("haproxy-servers-ipv6"); k < len(v6) {
		out.IPv6 = []string{v6[k]}
	}
	if parts := s.List("slapos-haproxy-partitions"); k < len(parts) {
		out.WorkDir = parts[k]
	}
	if err := out.Validate(); err != nil {
		return Settings{}, fmt.Errorf("cluster %s: haproxy %d: %w", c.Name, k, err)
	}
	return out, nil
}

// Layout returns the backend names.
func (s Settings) Layout() Layout {
	p := proxyPrefix(s.Cluster)
	return Layout{WriteBackend: p + "-write", ReadBackend: p + "-read"}
}

// Socket is the runtime API's unix socket path.
func (s Settings) Socket() string { return filepath.Join(s.WorkDir, SocketName) }

// proxyPrefix keeps the characters HAProxy allows in proxy names.
func proxyPrefix(cluster string) string {
	if cluster == "" {
		return "rmp"
	}
	b := []byte(cluster)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// Validate checks ports, addresses and paths; errors name the key.
func (s Settings) Validate() error {
	var errs []error
	port := func(key string, p int, optional bool) {
		if optional && p == 0 {
			return
		}
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s: port %d not in 1-65535", key, p))
		}
	}
	port("haproxy-write-port", s.WritePort, false)
	port("haproxy-read-port", s.ReadPort, false)
	port("haproxy-stat-port", s.StatPort, true)
	port("haproxy-api-port", s.APIPort, true)
	if s.WritePort == s.ReadPort {
		errs = append(errs, fmt.Errorf("haproxy-read-port: same as haproxy-write-port (%d)", s.WritePort))
	}
	for _, b := range []struct {
		key   string
		hosts []string
	}{{"haproxy-ip-write-bind", s.WriteBind}, {"haproxy-ip-read-bind", s.ReadBind}, {"haproxy-servers-ipv6", s.IPv6}} {
		for _, h := range b.hosts {
			if _, err := bindAddr(h, 1); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", b.key, err))
			}
		}
	}
	for _, h := range s.IPv6 {
		if hp, err := bindAddr(h, 1); err == nil && !hp.IsIPv6() {
			errs = append(errs, fmt.Errorf("haproxy-servers-ipv6: %q is not an IPv6 address", h))
		}
	}
	if s.WorkDir == "" {
		errs = append(errs, errors.New("working directory: empty"))
	} else if strings.ContainsAny(s.WorkDir, " \t\n\"'#") {
		errs = append(errs, fmt.Errorf("working directory %q: blanks, quotes and '#' are not allowed", s.WorkDir))
	} else if len(s.Socket()) > 107 {
		errs = append(errs, fmt.Errorf("runtime socket %s: longer than a unix socket path may be (107)", s.Socket()))
	}
	return errors.Join(errs...)
}

// bindAddr reads one bind host ("0.0.0.0", "[2001:db8::5]", "2001:db8::5") with a port.
func bindAddr(h string, port int) (ipv6.HostPort, error) {
	hp, err := ipv6.ParseHostPort(ipv6.Bracket(ipv6.Unbracket(strings.TrimSpace(h))), port)
	if err != nil {
		return hp, err
	}
	hp.Port = port
	return hp, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// haproxyDuration writes a duration in HAProxy's units.
func haproxyDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
}

// slots returns the databases with a slot: the configured servers, else the snapshot's.
func (s Settings) slots(snap *topology.Snapshot) []ipv6.HostPort {
	if len(s.Servers) > 0 {
		return s.Servers
	}
	if snap == nil {
		return nil
	}
	out := make([]ipv6.HostPort, len(snap.Servers))
	for i, srv := range snap.Servers {
		out[i] = srv.Addr
	}
	return out
}

// Config renders haproxy.cfg. Pure: the same settings and snapshot give the same bytes.
// The snapshot sets each slot's initial state (the Router keeps it right afterwards); with
// no snapshot every slot starts in maintenance, so nothing is routed before Bootstrap.
func Config(s Settings, snap *topology.Snapshot) (string, error) {
	if err := s.Validate(); err != nil {
		return "", fmt.Errorf("haproxy config: %w", err)
	}
	servers := s.slots(snap)
	if len(servers) == 0 {
		return "", errors.New("haproxy config: no database server")
	}
	l := s.Layout()
	want := Desired(router.IntentFor(snap, s.Rules.IntentOptions(nil)), l)

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# haproxy.cfg of cluster %s, generated by replication-manager-pro: do not edit.", s.Cluster)
	w("# Slots change at run time through the runtime API (%s); the state below is the initial one.", s.Socket())
	w("global")
	w("\tmaxconn %d", orInt(s.MaxConn, 4096))
	w("\tstats socket %s mode 600 level admin", s.Socket())
	if s.APIPort > 0 {
		w("\tstats socket ipv4@127.0.0.1:%d level admin", s.APIPort)
	}
	w("\tstats timeout 10s")
	w("")
	w("defaults")
	w("\tmode tcp")
	w("\toption tcpka")
	w("\ttimeout connect %s", haproxyDuration(orDuration(s.ConnectTimeout, 2*time.Second)))
	w("\ttimeout client %s", haproxyDuration(orDuration(s.ClientTimeout, time.Hour)))
	w("\ttimeout server %s", haproxyDuration(orDuration(s.ClientTimeout, time.Hour)))
	w("\ttimeout check %s", haproxyDuration(orDuration(s.ConnectTimeout, 2*time.Second)))
	w("\tdefault-server init-addr libc,none inter %s fall 2 rise 2", haproxyDuration(orDuration(s.CheckInterval, time.Second)))

	section := func(name string, port int, hosts []string, comment string, balance string, extra string) {
		w("")
		w("frontend %s", name)
		for _, h := range append(append([]string(nil), hosts...), s.IPv6...) {
			hp, _ := bindAddr(h, port) // validated
			if hp.IsIPv6() {
				w("\tbind %s v6only", hp.String())
			} else {
				w("\tbind %s", hp.String())
			}
		}
		w("\tdefault_backend %s", name)
		w("")
		w("backend %s", name)
		w("\t# %s", comment)
		if balance != "" {
			w("\tbalance %s", balance)
		}
		for _, a := range servers {
			slot := Slot{name, SlotName(a)}
			line := fmt.Sprintf("\tserver %s %s check%s", slot.Server, a.String(), extra)
			if s.BackendMaxConn > 0 {
				line += fmt.Sprintf(" maxconn %d", s.BackendMaxConn)
			}
			if want[slot] != Ready {
				line += " disabled"
			}
			w("%s", line)
		}
	}
	section(l.WriteBackend, s.WritePort, orList(s.WriteBind), "one slot per database, only the master's ready", "first", " on-marked-down shutdown-sessions")
	section(l.ReadBackend, s.ReadPort, orList(s.ReadBind), "replicas ready, the master per the read-on-master rules", "leastconn", "")
	if s.StatPort > 0 {
		w("")
		w("listen %s-stats", proxyPrefix(s.Cluster))
		w("\tmode http")
		for _, h := range append(orList(s.WriteBind), s.IPv6...) {
			hp, _ := bindAddr(h, s.StatPort)
			if hp.IsIPv6() {
				w("\tbind %s v6only", hp.String())
			} else {
				w("\tbind %s", hp.String())
			}
		}
		w("\tstats enable")
		w("\tstats uri /")
		w("\tstats refresh 5s")
	}
	return b.String(), nil
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func orList(l []string) []string {
	if len(l) == 0 {
		return []string{"0.0.0.0"}
	}
	return l
}
