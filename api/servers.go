package api

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"replication-manager-pro/cluster"
	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// DBServer is the server object of topology/servers, master and slaves, with the original's
// field names for what this implementation knows.
type DBServer struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	URL             string        `json:"url"`
	Host            string        `json:"host"` // IPv6 bracketed, as the original stores it
	Port            string        `json:"port"`
	IP              string        `json:"ip"`
	State           string        `json:"state"`
	PrevState       string        `json:"prevState"`
	FailCount       int           `json:"failCount"`
	ServerID        uint32        `json:"serverId"`
	DomainID        uint32        `json:"domainId"`
	GTIDBinlogPos   string        `json:"gtidBinlogPos"`
	CurrentGTID     string        `json:"currentGtid"`
	SlaveGTID       string        `json:"slaveGtid"`
	IOGTID          string        `json:"ioGtid"`
	ReadOnly        string        `json:"readOnly"` // "ON" / "OFF"
	HaveBinlog      bool          `json:"haveBinlog"`
	HaveMariaDBGTID bool          `json:"haveMariadbGtid"`
	HaveReadOnly    bool          `json:"haveReadOnly"`
	HaveSemiSync    bool          `json:"haveSemiSync"`
	SemiSyncMaster  bool          `json:"semiSyncMasterStatus"`
	SemiSyncSlave   bool          `json:"semiSyncSlaveStatus"`
	IsSlave         bool          `json:"isSlave"`
	IsRelay         bool          `json:"isRelay"`
	IsMaintenance   bool          `json:"isMaintenance"`
	IsDelayed       bool          `json:"isDelayed"`
	Ignored         bool          `json:"ignored"`
	IgnoredRO       bool          `json:"ignoredRO"`
	Prefered        bool          `json:"prefered"`
	DBVersion       string        `json:"dbVersion"`
	Replications    []Replication `json:"replications"`
	// Extensions.
	Role           string  `json:"role"`
	Depth          int     `json:"depth"` // hops from the master: 1 for its replicas, 2 under a relay...
	Reachable      bool    `json:"reachable"`
	ProbeError     string  `json:"probeError,omitempty"`
	ProbeLatencyMs float64 `json:"probeLatencyMs"`
	// HeartbeatLagSeconds is the replica's lag measured by the heartbeat the manager writes
	// on the master (monitoring-write-heartbeat); absent without it.
	HeartbeatLagSeconds *float64 `json:"heartbeatLagSeconds,omitempty"`
}

// Replication is one replication channel, named after SHOW SLAVE STATUS columns.
type Replication struct {
	ConnectionName      string `json:"connectionName"`
	MasterHost          string `json:"masterHost"`
	MasterPort          string `json:"masterPort"`
	MasterServerID      uint32 `json:"masterServerId"`
	SlaveIORunning      string `json:"slaveIoRunning"`
	SlaveSQLRunning     string `json:"slaveSqlRunning"`
	SecondsBehindMaster *int64 `json:"secondsBehindMaster"`
	LastIOErrno         int    `json:"lastIoErrno"`
	LastIOError         string `json:"lastIoError"`
	LastSQLErrno        int    `json:"lastSqlErrno"`
	LastSQLError        string `json:"lastSqlError"`
	UsingGTID           string `json:"usingGtid"`
	GTIDIOPos           string `json:"gtidIoPos"`
	SQLDelay            int64  `json:"sqlDelay"`
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

func serverObject(m *cluster.Member, s *topology.Server) DBServer {
	host := s.Addr.HostBracketed()
	o := DBServer{
		ID: s.ID, Name: host, URL: s.Addr.String(), Host: host, Port: strconv.Itoa(s.Addr.Port),
		State: string(s.State), PrevState: string(s.PrevState), FailCount: s.FailCount,
		ServerID: s.ServerID, GTIDBinlogPos: s.BinlogPos.String(), CurrentGTID: s.CurrentPos.String(),
		SlaveGTID: s.SlavePos.String(), ReadOnly: onOff(s.ReadOnly), HaveBinlog: s.LogBin,
		HaveMariaDBGTID: true, HaveReadOnly: s.ReadOnly, HaveSemiSync: s.SemiSyncMaster || s.SemiSyncReplica,
		SemiSyncMaster: s.SemiSyncMaster, SemiSyncSlave: s.SemiSyncReplica,
		IsSlave: s.IsReplica(), IsRelay: s.Role == topology.RoleRelay, IsMaintenance: s.Maintenance,
		Ignored: s.Ignored, Prefered: s.Preferred, DBVersion: s.Version, Role: string(s.Role), Depth: s.Depth,
		Reachable: s.Reachable, ProbeError: s.ProbeError, ProbeLatencyMs: float64(s.ProbeLatency.Microseconds()) / 1000,
		Replications: []Replication{},
	}
	if m != nil {
		if l, err := m.Config.Settings.HostList("db-servers-ignored-readonly"); err == nil {
			o.IgnoredRO = slices.ContainsFunc(l, func(h ipv6.HostPort) bool { return ipv6.SameAddr(h, s.Addr) })
		}
	}
	if s.ID == "" {
		o.ID = topology.ServerIDFor(s.Addr)
	}
	for _, r := range s.Replications {
		o.Replications = append(o.Replications, Replication{
			ConnectionName: r.Channel, MasterHost: r.Source.HostBracketed(), MasterPort: strconv.Itoa(r.Source.Port),
			MasterServerID: r.SourceServerID, SlaveIORunning: string(r.IO), SlaveSQLRunning: string(r.SQL),
			SecondsBehindMaster: r.Lag, LastIOErrno: r.LastIOErrno, LastIOError: r.LastIOError,
			LastSQLErrno: r.LastSQLErrno, LastSQLError: r.LastSQLError, UsingGTID: r.UsingGTID,
			GTIDIOPos: r.IOPos.String(), SQLDelay: r.SQLDelay,
		})
		if r.SQLDelay > 0 {
			o.IsDelayed = true
		}
	}
	if r, ok := s.PrimaryReplication(); ok {
		o.IOGTID = r.IOPos.String()
		if m != nil {
			if hl, ok := m.Monitor.HeartbeatLag(s.Addr); ok {
				v := hl.Lag.Seconds()
				o.HeartbeatLagSeconds = &v
			}
		}
	}
	return o
}

// serverByID finds a configured server by its id (db<crc64>), or by "host:port" in any
// form ipv6.SameAddr accepts; it returns the address as configured.
func (s *Server) serverByID(m *cluster.Member, id string) (ipv6.HostPort, bool) {
	mc := s.cached(m)
	for i, h := range mc.hosts {
		if mc.ids[i] == id {
			return h, true
		}
	}
	if hp, err := ipv6.ParseHostPort(id, ipv6.DefaultPort); err == nil && strings.Contains(id, ":") {
		for _, h := range mc.hosts {
			if ipv6.SameAddr(h, hp) {
				return h, true
			}
		}
	}
	return ipv6.HostPort{}, false
}

type serverActionKind int

const (
	actMaintenanceToggle serverActionKind = iota
	actMaintenanceOn
	actMaintenanceOff
	actSwitchover
	actSetPrefered
	actSetIgnored
	actSetUnrated
	actStart
	actStop
	actRestart
)

// ServiceRestarter is a ServiceControl that also restarts a database (stop then start, one
// job); without it the restart action answers 501.
type ServiceRestarter interface {
	RestartDatabase(ctx context.Context, cluster string, addr ipv6.HostPort) error
}

// serverAction handles /api/clusters/{c}/servers/{s}/actions/*. Unknown server: 404.
// GrantDBReplication is the original's grant for a server's replication actions.
const GrantDBReplication = "db-replication"

// replicaControl answers stop-slave, start-slave and skip-replication-event: the plan and
// its result as the other actions (200, 409 refused or busy, 500 a step failed).
func (s *Server) replicaControl(kind cluster.PlanKind) func(http.ResponseWriter, *http.Request, *reqCtx) {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		addr, ok := s.serverByID(rc.member, param(r, "s"))
		if !ok {
			http.Error(w, "Server Not Found", http.StatusNotFound)
			return
		}
		s.act(w, r, rc, cluster.ActionRequest{Kind: kind, Target: &addr, Force: rc.in.bool("force")})
	}
}

func (s *Server) serverAction(kind serverActionKind) func(http.ResponseWriter, *http.Request, *reqCtx) {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		addr, ok := s.serverByID(rc.member, param(r, "s"))
		if !ok {
			http.Error(w, "Server Not Found", http.StatusNotFound)
			return
		}
		mon := rc.member.Monitor
		ctx, cancel := actionContext(r, actionTimeout)
		defer cancel()
		switch kind {
		case actMaintenanceToggle, actMaintenanceOn, actMaintenanceOff:
			on := kind == actMaintenanceOn
			if kind == actMaintenanceToggle {
				on = !mon.InMaintenance(addr)
			}
			if err := mon.SetMaintenance(ctx, addr, on); err != nil {
				// The flag is set; only telling a router failed.
				http.Error(w, "Maintenance set, but a router was not told: "+err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusOK)
		case actSwitchover:
			s.switchover(w, r, rc, &addr)
		case actSetPrefered, actSetIgnored, actSetUnrated:
			s.editHostLists(w, r, rc, addr, kind)
		case actStart, actStop, actRestart:
			if s.opt.Services == nil {
				http.Error(w, "no orchestrator: start and stop need prov-orchestrator support", http.StatusNotImplemented)
				return
			}
			var err error
			switch kind {
			case actStart:
				err = s.opt.Services.StartDatabase(ctx, rc.member.Name, addr)
			case actStop:
				err = s.opt.Services.StopDatabase(ctx, rc.member.Name, addr)
			default:
				rs, ok := s.opt.Services.(ServiceRestarter)
				if !ok {
					http.Error(w, "restart is not available with this orchestrator", http.StatusNotImplemented)
					return
				}
				err = rs.RestartDatabase(ctx, rc.member.Name, addr)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		}
	}
}

// editHostLists changes db-servers-prefered-master / db-servers-ignored-hosts and reloads
// the cluster's monitor with them.
func (s *Server) editHostLists(w http.ResponseWriter, r *http.Request, rc *reqCtx, addr ipv6.HostPort, kind serverActionKind) {
	unlock, ok := s.lockCluster(r.Context(), rc.member.Name)
	if !ok {
		http.Error(w, "Another action runs on this cluster", http.StatusConflict)
		return
	}
	defer unlock()
	err := s.opt.Fleet.ReloadWith(rc.member.Name, func(st *config.Settings) error {
		pref, err := st.PreferedMasters()
		if err != nil {
			return err
		}
		ign, err := st.IgnoredHosts()
		if err != nil {
			return err
		}
		pref, ign = without(pref, addr), without(ign, addr)
		switch kind {
		case actSetPrefered:
			pref = append(pref, addr)
		case actSetIgnored:
			ign = append(ign, addr)
		}
		if err := st.Set("db-servers-prefered-master", ipv6.FormatList(pref)); err != nil {
			return err
		}
		return st.Set("db-servers-ignored-hosts", ipv6.FormatList(ign))
	})
	if err != nil {
		http.Error(w, "Settings not changed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func without(l []ipv6.HostPort, h ipv6.HostPort) []ipv6.HostPort {
	var out []ipv6.HostPort
	for _, x := range l {
		if !ipv6.SameAddr(x, h) {
			out = append(out, x)
		}
	}
	return out
}

// findHostServer finds a server of the snapshot by host (and port when given), compared
// with ipv6.SameHost: an IPv6 literal with or without brackets, in any of its forms.
func findHostServer(snap *topology.Snapshot, host, port string) (*topology.Server, bool) {
	if snap == nil {
		return nil, false
	}
	for i := range snap.Servers {
		srv := &snap.Servers[i]
		if !ipv6.SameHost(srv.Addr.Host, host) {
			continue
		}
		if port == "" || port == strconv.Itoa(srv.Addr.Port) {
			return srv, true
		}
	}
	return nil, false
}

func hostPortParams(r *http.Request) (host, port string) {
	return param(r, "host"), param(r, "port")
}

// validMaster is the original's is-master test.
func validMaster(m *cluster.Member, srv *topology.Server) bool {
	snap := m.Monitor.Snapshot()
	ms, ok := snap.MasterServer()
	return ok && !m.Monitor.Busy() && ipv6.SameAddr(ms.Addr, srv.Addr) && !srv.State.IsDown() && !srv.Maintenance &&
		srv.State != topology.StateMaintenance && !srv.ReadOnly
}

// validSlave is the original's is-slave test.
func validSlave(m *cluster.Member, srv *topology.Server) bool {
	if srv.State.IsDown() || srv.Maintenance || srv.State == topology.StateMaintenance {
		return false
	}
	if ms, ok := m.Monitor.Snapshot().MasterServer(); ok && ipv6.SameAddr(ms.Addr, srv.Addr) {
		return m.Config.Settings.ProxyServersReadOnMaster
	}
	r, ok := srv.PrimaryReplication()
	return ok && r.Healthy() && (srv.State == topology.StateSlave || srv.State == topology.StateSlaveLate)
}

func plainText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// handleIsMaster: …/servers/{host}/is-master always answers 200 (the verdict is in the
// body); …/servers/{host}/{port}/is-master answers 200 or 500, as the original.
func (s *Server) handleIsMaster(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	host, port := hostPortParams(r)
	withPort := port != ""
	m, ok := s.opt.Fleet.Get(param(r, "c"))
	if !ok {
		plainText(w, http.StatusInternalServerError, "503 -No cluster!")
		return
	}
	srv, found := findHostServer(m.Monitor.Snapshot(), host, port)
	switch {
	case found && validMaster(m, srv):
		plainText(w, http.StatusOK, "200 -Valid Master!")
	case !withPort:
		plainText(w, http.StatusOK, "503 -Not a Valid Master!")
	case !found:
		plainText(w, http.StatusInternalServerError, "503 -Node not Found!")
	default:
		plainText(w, http.StatusInternalServerError, "503 -Not a Valid Master!")
	}
}

// handleIsSlave: host form 500 when not a valid replica, host/port form 503.
func (s *Server) handleIsSlave(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	host, port := hostPortParams(r)
	m, ok := s.opt.Fleet.Get(param(r, "c"))
	if !ok {
		plainText(w, http.StatusInternalServerError, "503 -No cluster!")
		return
	}
	srv, found := findHostServer(m.Monitor.Snapshot(), host, port)
	if found && validSlave(m, srv) {
		plainText(w, http.StatusOK, "200 -Valid Slave!")
		return
	}
	code := http.StatusInternalServerError
	if port != "" {
		code = http.StatusServiceUnavailable
	}
	if !found {
		plainText(w, code, "503 -Node not Found!")
		return
	}
	plainText(w, code, "503 -Not a Valid Slave!")
}
