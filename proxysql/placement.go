package proxysql

import (
	"fmt"
	"sort"

	"replication-manager-pro/ipv6"
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
	OnMasterNoSlave bool // proxy-servers-read-on-master-no-slave: when no replica can serve
}

// placement is where one server belongs.
type placement int

const (
	placeReader  placement = iota // reader hostgroup
	placeWriter                   // writer hostgroup (the master)
	placeOffline                  // offline hostgroup
)

// Desired computes the mysql_servers rows a snapshot calls for, sorted. It is pure.
//
//   - The snapshot's master: writer hostgroup; also reader hostgroup with OnMaster, or with
//     OnMasterNoSlave when no replica can serve reads (every other server offline, in
//     maintenance, down or with broken replication).
//   - A server with a replication channel (replica, relay, even failed: ProxySQL shuns an
//     unreachable backend by itself): reader hostgroup.
//   - A server without one (standalone, a failed old master not yet rejoined, never probed)
//     and an ignored server (db-servers-ignored-hosts): offline hostgroup. Keeping them out
//     of the writer/reader pair matters: ProxySQL's monitor would make a read_only=0
//     standalone a writer.
//   - A server in maintenance keeps its hostgroups with status OFFLINE_SOFT (drained
//     gracefully, back with ONLINE); rows of the offline hostgroup are OFFLINE_SOFT always.
//
// ok is false when the snapshot names no master: nothing can be decided then.
func Desired(s *topology.Snapshot, hg Hostgroups, d RowDefaults, p ReadPolicy) (rows []ServerRow, ok bool) {
	if s == nil || s.Master < 0 || s.Master >= len(s.Servers) {
		return nil, false
	}
	place := placements(s)
	servable := 0
	for i := range s.Servers {
		if place[i] == placeReader && canRead(&s.Servers[i]) {
			servable++
		}
	}
	for i := range s.Servers {
		srv := &s.Servers[i]
		status := StatusOnline
		if srv.Maintenance {
			status = StatusOfflineSoft
		}
		switch place[i] {
		case placeWriter:
			rows = append(rows, newRow(hg.Writer, srv.Addr, status, d, false))
			if p.OnMaster || (p.OnMasterNoSlave && servable == 0) {
				rows = append(rows, newRow(hg.Reader, srv.Addr, status, d, true))
			}
		case placeReader:
			rows = append(rows, newRow(hg.Reader, srv.Addr, status, d, true))
		case placeOffline:
			rows = append(rows, newRow(hg.Offline, srv.Addr, StatusOfflineSoft, d, false))
		}
	}
	sortRows(rows)
	return rows, true
}

func placements(s *topology.Snapshot) []placement {
	out := make([]placement, len(s.Servers))
	for i := range s.Servers {
		srv := &s.Servers[i]
		switch {
		case i == s.Master:
			out[i] = placeWriter
		case srv.Ignored || srv.State == topology.StateStandAlone || !srv.IsReplica():
			out[i] = placeOffline
		default:
			out[i] = placeReader
		}
	}
	return out
}

// canRead reports a replica that can serve reads now.
func canRead(s *topology.Server) bool {
	if s.Maintenance || s.State.IsDown() || !s.Reachable {
		return false
	}
	switch s.State {
	case topology.StateSlaveErr, topology.StateRelayErr:
		return false
	}
	return true
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

// Contradictions compares ProxySQL's runtime with the rows a snapshot calls for and returns
// what must be corrected, one line each (empty when nothing). Only the owned hostgroups
// are looked at; OFFLINE_HARD runtime rows count as absent (ProxySQL leaves them behind
// when it moves a server) and SHUNNED as ONLINE (ProxySQL's own health verdict).
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
// Everything else that contradicts the snapshot's master is corrected: the master missing
// from the writer hostgroup, another server in it, a server that must be offline still
// routed, a wrong status.
func Contradictions(s *topology.Snapshot, runtime, desired []ServerRow, hg Hostgroups, monitor bool) []string {
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
	masterAddr := ipv6.HostPort{}
	if m, ok := s.MasterServer(); ok {
		masterAddr = normAddr(m.Addr)
	}
	// monitorOwns reports a row ProxySQL's read_only monitor decides.
	monitorOwns := func(k rowKey) bool {
		if !monitor || (k.hg != hg.Writer && k.hg != hg.Reader) {
			return false
		}
		srv, ok := s.Find(k.addr())
		if !ok {
			srv, ok = findUnbracketed(s, k.addr())
		}
		if !ok || !srv.Reachable || srv.Maintenance {
			return false
		}
		isMaster := normAddr(srv.Addr) == masterAddr
		if !isMaster && (srv.Ignored || srv.State == topology.StateStandAlone || !srv.IsReplica()) {
			return false // an offline server: ours to move out of the pair
		}
		if isMaster == srv.ReadOnly {
			return true // read_only disagrees with the role: ProxySQL follows read_only
		}
		return isMaster && k.hg == hg.Reader // monitor_writer_is_also_reader
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

func findUnbracketed(s *topology.Snapshot, a ipv6.HostPort) (*topology.Server, bool) {
	for i := range s.Servers {
		if normAddr(s.Servers[i].Addr) == a {
			return &s.Servers[i], true
		}
	}
	return nil, false
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
