// Package topology is the shared model of a replication cluster at one instant: servers,
// their states and roles, and the snapshot the monitor publishes each tick. It holds values
// only (no I/O), so every other package can speak in its types without import cycles.
package topology

import (
	"hash/crc64"
	"strconv"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
)

// State is a server's monitoring state; the names are replication-manager's, which the API,
// the UI and scripts (db-servers-state-change-script) show and match on.
type State string

const (
	StateUnknown     State = ""
	StateMaster      State = "Master"
	StateSlave       State = "Slave"
	StateSlaveErr    State = "SlaveErr"
	StateSlaveLate   State = "SlaveLate"
	StateRelay       State = "Relay"
	StateRelayErr    State = "RelayErr"
	StateRelayLate   State = "RelayLate"
	StateSuspect     State = "Suspect"
	StateFailed      State = "Failed"
	StateStandAlone  State = "StandAlone"
	StateMaintenance State = "Maintenance"
	StateErrorAuth   State = "ErrorAuth"
)

// IsDown reports states in which the server cannot serve: not reached, or refused us.
func (s State) IsDown() bool {
	return s == StateFailed || s == StateSuspect || s == StateErrorAuth
}

// Role is a server's place in the replication graph, derived from who replicates from whom.
type Role string

const (
	RoleUnknown    Role = "unknown"
	RoleMaster     Role = "master"
	RoleReplica    Role = "replica"
	RoleRelay      Role = "relay" // replicates from the master and feeds other replicas
	RoleStandalone Role = "standalone"
)

// ThreadState is a replication thread's running state as SHOW SLAVE STATUS reports it.
type ThreadState string

const (
	ThreadYes        ThreadState = "Yes"
	ThreadNo         ThreadState = "No"
	ThreadConnecting ThreadState = "Connecting"
)

// Replication is one replication channel of a server (one row of SHOW ALL SLAVES STATUS).
type Replication struct {
	Channel            string        `json:"channel"` // connection name; "" is the default channel
	Source             ipv6.HostPort `json:"source"`  // Master_Host:Master_Port, host unbracketed
	SourceServerID     uint32        `json:"sourceServerId"`
	IO                 ThreadState   `json:"io"`
	SQL                ThreadState   `json:"sql"`
	Lag                *int64        `json:"lag"` // Seconds_Behind_Master; nil when NULL (a thread stopped)
	LastIOErrno        int           `json:"lastIoErrno"`
	LastIOError        string        `json:"lastIoError"`
	LastSQLErrno       int           `json:"lastSqlErrno"`
	LastSQLError       string        `json:"lastSqlError"`
	UsingGTID          string        `json:"usingGtid"` // "No", "Slave_Pos", "Current_Pos"
	IOPos              gtid.List     `json:"ioPos"`
	ReceivedHeartbeats uint64        `json:"receivedHeartbeats"`
	HeartbeatPeriod    float64       `json:"heartbeatPeriod"`
	SQLDelay           int64         `json:"sqlDelay"`

	// History kept by discovery across ticks.
	LastLag        *int64    `json:"lastLag"`        // last non-NULL Seconds_Behind_Master seen
	SourceActivity time.Time `json:"sourceActivity"` // last tick the source showed life: IO thread up and heartbeats or IO position moving
}

// Healthy reports both threads running.
func (r Replication) Healthy() bool { return r.IO == ThreadYes && r.SQL == ThreadYes }

// Server is what the monitor knows of one configured server at one tick.
type Server struct {
	ID   string        `json:"id"` // "db" + decimal CRC-64 (ECMA) of "host:port", as replication-manager names servers
	Addr ipv6.HostPort `json:"addr"`

	State     State `json:"state"`
	PrevState State `json:"prevState"`
	Role      Role  `json:"role"`
	Depth     int   `json:"depth"`     // hops from the master: 0 for the master (and servers outside its tree), 1 for its direct replicas, 2 under a relay...
	FailCount int   `json:"failCount"` // consecutive failed probes

	Reachable    bool          `json:"reachable"`
	ProbeError   string        `json:"probeError"` // last probe error, without secrets
	ProbedAt     time.Time     `json:"probedAt"`
	ProbeLatency time.Duration `json:"probeLatency"`

	Version           string        `json:"version"`
	ServerID          uint32        `json:"serverId"`
	ReadOnly          bool          `json:"readOnly"`
	LogBin            bool          `json:"logBin"`
	LogSlaveUpdates   bool          `json:"logSlaveUpdates"`
	GTIDStrict        bool          `json:"gtidStrict"`
	CurrentPos        gtid.List     `json:"currentPos"`      // gtid_current_pos
	BinlogPos         gtid.List     `json:"binlogPos"`       // gtid_binlog_pos
	SlavePos          gtid.List     `json:"slavePos"`        // gtid_slave_pos
	SemiSyncMaster    bool          `json:"semiSyncMaster"`  // semi-sync master enabled and active
	SemiSyncReplica   bool          `json:"semiSyncReplica"` // semi-sync replica enabled and active
	Replications      []Replication `json:"replications"`
	BinlogDumpThreads int           `json:"binlogDumpThreads"` // connected replicas

	// From configuration and operator actions.
	Maintenance bool `json:"maintenance"`
	Ignored     bool `json:"ignored"`   // never elected (db-servers-ignored-hosts)
	Preferred   bool `json:"preferred"` // elected first (db-servers-prefered-master)
}

// ServerID returns replication-manager's server identifier for an address: "db" followed by
// the decimal CRC-64 (ECMA table) of the "host:port" string, IPv6 hosts with brackets.
func ServerIDFor(addr ipv6.HostPort) string {
	return "db" + strconv.FormatUint(crc64.Checksum([]byte(addr.String()), ecma), 10)
}

var ecma = crc64.MakeTable(crc64.ECMA)

// PrimaryReplication returns the channel the topology follows: the default channel when the
// server has it, else the first one.
func (s *Server) PrimaryReplication() (Replication, bool) {
	for _, r := range s.Replications {
		if r.Channel == "" {
			return r, true
		}
	}
	if len(s.Replications) > 0 {
		return s.Replications[0], true
	}
	return Replication{}, false
}

// IsReplica reports a server with at least one configured replication channel.
func (s *Server) IsReplica() bool { return len(s.Replications) > 0 }

// Kind names the topology of a cluster, with replication-manager's names.
type Kind string

const (
	KindUnknown       Kind = "unknown"
	KindMasterSlave   Kind = "master-slave"
	KindActivePassive Kind = "active-passive" // a single server
	KindMultiMaster   Kind = "multi-master"   // two servers replicating from each other
	KindRing          Kind = "multi-master-ring"
)

// Snapshot is the immutable view of one cluster at one tick. The monitor builds a new one
// each tick and never mutates a published snapshot, so readers (API, UI, metrics) may keep it.
type Snapshot struct {
	Cluster string    `json:"cluster"`
	Tick    uint64    `json:"tick"`
	Time    time.Time `json:"time"`

	Servers []Server `json:"servers"` // in configured order
	Master  int      `json:"master"`  // index into Servers, -1 when no master is known
	Kind    Kind     `json:"kind"`

	Problems []Problem `json:"problems"` // analysis of this snapshot, most severe first

	// Flags the API exposes (repman's cluster JSON).
	IsDown     bool `json:"isDown"` // every server Failed or ErrorAuth (Suspect does not count)
	IsAllDBUp  bool `json:"isAllDbUp"`
	IsFailable bool `json:"isFailable"` // no error-level problem: a failover could proceed
}

// MasterServer returns the master, if one is known.
func (s *Snapshot) MasterServer() (*Server, bool) {
	if s == nil || s.Master < 0 || s.Master >= len(s.Servers) {
		return nil, false
	}
	return &s.Servers[s.Master], true
}

// Find returns the server at this address, compared with ipv6.SameAddr: a replica's
// Master_Host "2001:DB8::1" or an API route's "[2001:db8::1]" finds the configured
// "[2001:db8::1]". A nil snapshot finds nothing.
func (s *Snapshot) Find(addr ipv6.HostPort) (*Server, bool) {
	if s == nil {
		return nil, false
	}
	// Addresses usually come from the same configuration list: try them as written first,
	// which costs no parsing.
	for i := range s.Servers {
		if s.Servers[i].Addr == addr {
			return &s.Servers[i], true
		}
	}
	for i := range s.Servers {
		if ipv6.SameAddr(s.Servers[i].Addr, addr) {
			return &s.Servers[i], true
		}
	}
	return nil, false
}

// Severity ranks problems; errors make a cluster not failable, as in replication-manager.
type Severity string

const (
	SeverityError   Severity = "ERROR"
	SeverityWarning Severity = "WARN"
)

// Code names one analysed problem. The names are stable: alerts, metrics and tests match on them.
type Code string

// Problem is one finding of the analysis, tied to a server when it concerns one.
type Problem struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	Server   string   `json:"server"` // "host:port" in repman form, "" for cluster-wide problems
	Message  string   `json:"message"`
}
