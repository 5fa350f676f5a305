package proxysql

import (
	"fmt"
	"sort"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// Hostgroups are the three hostgroups a Router owns.
type Hostgroups struct {
	Writer  int // proxysql-writer-hostgroup: the master, alone
	Reader  int // proxysql-reader-hostgroup: the replicas (and the master when reading on it)
	Offline int // servers kept out of routing, outside the replication-hostgroup pair
}

func (h Hostgroups) owns(hg int) bool { return hg == h.Writer || hg == h.Reader || hg == h.Offline }

// DefaultOfflineHostgroup is replication-manager's offline hostgroup.
const DefaultOfflineHostgroup = 666

// RowDefaults are the attributes of the rows a Router writes.
type RowDefaults struct {
	Weight            int  // proxysql-janitor-weights
	MaxConnections    int  // proxy-servers-backend-max-connections
	MaxReplicationLag int  // proxy-servers-backend-max-replication-lag (reader rows only)
	UseSSL            bool // backends speak TLS
	Comment           string
}

// ReadPolicy says when the master also serves reads.
type ReadPolicy struct {
	OnMaster        bool // proxy-servers-read-on-master
	OnMasterNoSlave bool // proxy-servers-read-on-master-no-slave: when no replica is a reader
}

// IntentOptions returns the options of router.IntentFor: this read policy, the reader rows'
// lag bound (proxy-servers-backend-max-replication-lag) and the servers in operator
// maintenance.
func (p ReadPolicy) IntentOptions(maxLag int, maint []ipv6.HostPort) router.IntentOptions {
	return router.IntentOptions{ReadOnMaster: p.OnMaster, ReadOnMasterNoSlave: p.OnMasterNoSlave, MaxReplicationLag: int64(maxLag), Maintenance: maint}
}

// Desired translates a routing intent into the mysql_servers rows it calls for, sorted.
// It is pure; the decisions are router.IntentFor's.
//
//	intent           rows
//	Writer           writer ONLINE; reader ONLINE with WriterReads
//	Reader           reader ONLINE
//	Drained master   writer OFFLINE_SOFT; reader OFFLINE_SOFT with WriterReads
//	Drained          reader OFFLINE_SOFT
//	Offline          offline hostgroup, OFFLINE_SOFT
//
// OFFLINE_SOFT lets open connections finish. An Offline server leaves the writer/reader
// pair (ProxySQL drops a removed backend's connections, as OFFLINE_HARD) for the offline
// hostgroup, outside the pair, where ProxySQL's read_only monitor cannot make a writable
// server a writer and nothing routes.
//
// ok is false when the intent names no master: nothing can be decided then.
func Desired(in router.Intent, hg Hostgroups, d RowDefaults) (rows []ServerRow, ok bool) {
	if _, ok := in.MasterIntent(); !ok {
		return nil, false
	}
	for _, si := range in.Servers {
		switch {
		case si.Route == router.Writer:
			rows = append(rows, newRow(hg.Writer, si.Addr, StatusOnline, d, false))
			if in.WriterReads {
				rows = append(rows, newRow(hg.Reader, si.Addr, StatusOnline, d, true))
			}
		case si.Route == router.Drained && si.Master:
			rows = append(rows, newRow(hg.Writer, si.Addr, StatusOfflineSoft, d, false))
			if in.WriterReads {
				rows = append(rows, newRow(hg.Reader, si.Addr, StatusOfflineSoft, d, true))
			}
		case si.Route == router.Reader:
			rows = append(rows, newRow(hg.Reader, si.Addr, StatusOnline, d, true))
		case si.Route == router.Drained:
			rows = append(rows, newRow(hg.Reader, si.Addr, StatusOfflineSoft, d, true))
		default:
			rows = append(rows, newRow(hg.Offline, si.Addr, StatusOfflineSoft, d, false))
		}
	}
	sortRows(rows)
	return rows, true
}

func newRow(hostgroup int, addr ipv6.HostPort, st Status, d RowDefaults, reader bool) ServerRow {
	r := ServerRow{
		Hostgroup: hostgroup, Host: ipv6.Unbracket(addr.Host), Port: addr.Port, Status: st,
		Weight: d.Weight, MaxConnections: d.MaxConnections, UseSSL: d.UseSSL, Comment: d.Comment,
	}
	if reader {
		r.MaxReplicationLag = d.MaxReplicationLag
	}
	return r
}

// Contradictions compares ProxySQL's runtime with the rows an intent calls for (desired,
// from Desired(in)) and returns what must be corrected, one line each (empty when
// nothing). Only the owned hostgroups are looked at; OFFLINE_HARD runtime rows count as
// absent (ProxySQL leaves them behind when it moves a server) and SHUNNED as ONLINE
// (ProxySQL's own health verdict).
//
// With monitor true (the writer/reader pair is in runtime_mysql_replication_hostgroups),
// ProxySQL moves servers between the writer and reader hostgroups from their read_only,
// and the Router does not fight it:
//   - a server whose read_only disagrees with its role in the snapshot (a writable replica,
//     a read-only master) is left wherever ProxySQL put it in those two hostgroups: the
//     read_only enforcement is the fix, and ProxySQL follows it;
//   - the master's membership of the reader hostgroup is left to ProxySQL's
//     mysql-monitor_writer_is_also_reader.
//
// Unreachable servers, servers in maintenance and Offline ones are never the monitor's.
// Everything else that contradicts the intent is corrected: the master missing from the
// writer hostgroup, another server in it, a server that must be offline still routed, a
// wrong status.
func Contradictions(s *topology.Snapshot, in router.Intent, runtime, desired []ServerRow, hg Hostgroups, monitor bool) []string {
	des := map[rowKey]Status{}
	for _, r := range desired {
		des[r.key()] = r.Status
	}
	act := map[rowKey]Status{}
	for _, r := range runtime {
		if !hg.owns(r.Hostgroup) || r.Status == StatusOfflineHard {
			continue
		}
		st := r.Status
		if st == StatusShunned {
			st = StatusOnline
		}
		act[r.key()] = st
	}
	// monitorOwns reports a row ProxySQL's read_only monitor decides.
	monitorOwns := func(k rowKey) bool {
		if !monitor || (k.hg != hg.Writer && k.hg != hg.Reader) {
			return false
		}
		si, ok := in.Find(k.addr())
		if !ok || si.Route == router.Offline || si.Maintenance {
			return false // an offline server: ours to move out of the pair
		}
		srv, ok := s.Find(si.Addr)
		if !ok || !srv.Reachable {
			return false
		}
		if si.Master == srv.ReadOnly {
			return true // read_only disagrees with the role: ProxySQL follows read_only
		}
		return si.Master && k.hg == hg.Reader // monitor_writer_is_also_reader
	}
	var out []string
	for k, st := range des {
		a, ok := act[k]
		switch {
		case monitorOwns(k):
		case !ok:
			out = append(out, fmt.Sprintf("missing hg=%d %s", k.hg, k.addr()))
		case a != st:
			out = append(out, fmt.Sprintf("status hg=%d %s is %s, want %s", k.hg, k.addr(), a, st))
		}
	}
	for k, a := range act {
		if _, ok := des[k]; ok || monitorOwns(k) {
			continue
		}
		out = append(out, fmt.Sprintf("unexpected hg=%d %s %s", k.hg, k.addr(), a))
	}
	sort.Strings(out)
	return out
}

func normAddr(a ipv6.HostPort) ipv6.HostPort {
	return ipv6.HostPort{Host: ipv6.Unbracket(a.Host), Port: a.Port}
}

// rowDiff returns the statements' work to turn the owned part of current into desired:
// rows to delete and rows to write (missing or different).
func rowDiff(current, desired []ServerRow, hg Hostgroups) (del, put []ServerRow) {
	want := map[rowKey]ServerRow{}
	for _, r := range desired {
		want[r.key()] = r
	}
	have := map[rowKey]ServerRow{}
	for _, r := range current {
		if !hg.owns(r.Hostgroup) {
			continue
		}
		have[r.key()] = r
		if _, ok := want[r.key()]; !ok {
			del = append(del, r)
		}
	}
	for _, r := range desired {
		if h, ok := have[r.key()]; !ok || h != r {
			put = append(put, r)
		}
	}
	sortRows(del)
	sortRows(put)
	return del, put
}
