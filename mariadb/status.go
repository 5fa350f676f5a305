package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/gtid"
)

// Version is a parsed @@version.
type Version struct {
	Raw                 string
	Major, Minor, Patch int
	MariaDB             bool
}

// ParseVersion reads "10.11.19-MariaDB-0+deb12u1-log", "11.4.2-MariaDB", "8.0.36".
// Missing or non-numeric parts stay 0.
func ParseVersion(s string) Version {
	v := Version{Raw: s, MariaDB: strings.Contains(strings.ToLower(s), "mariadb")}
	num := s
	if i := strings.IndexAny(num, "-+ "); i >= 0 {
		num = num[:i]
	}
	parts := strings.SplitN(num, ".", 3)
	dst := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		*dst[i] = n
	}
	return v
}

// AtLeast reports whether v >= major.minor.patch.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

func (v Version) String() string { return v.Raw }

// Status is one probe of a server: what the monitor needs every tick.
type Status struct {
	Version         Version
	ServerID        uint32
	DomainID        uint32 // @@gtid_domain_id
	ReadOnly        bool
	LogBin          bool
	LogSlaveUpdates bool
	BinlogFormat    string
	GTIDStrictMode  bool
	GTIDCurrentPos  gtid.List
	GTIDBinlogPos   gtid.List
	GTIDSlavePos    gtid.List
	// Semi-sync (absent plugin or variables read as false).
	SemiSyncMasterEnabled bool
	SemiSyncMasterStatus  bool
	SemiSyncSlaveEnabled  bool
	SemiSyncSlaveStatus   bool
	// ConnectedReplicas counts the replicas whose binlog dump thread runs on this server.
	ConnectedReplicas int
	// Replications holds one entry per replication connection (SHOW ALL SLAVES STATUS);
	// empty for a server that replicates from nobody.
	Replications []Replication
	Latency      time.Duration // wall time of the probe's round trips
}

// Replication returns the connection named channel ("" = default), if configured.
func (s *Status) Replication(channel string) (Replication, bool) {
	for _, r := range s.Replications {
		if strings.EqualFold(r.ConnectionName, channel) {
			return r, true
		}
	}
	return Replication{}, false
}

// IsReplica reports whether the server has at least one replication connection configured.
func (s *Status) IsReplica() bool { return len(s.Replications) > 0 }

// ThreadState is Slave_IO_Running / Slave_SQL_Running: Yes, No, Connecting, Preparing.
type ThreadState string

// Replication thread states.
const (
	ThreadYes        ThreadState = "Yes"
	ThreadNo         ThreadState = "No"
	ThreadConnecting ThreadState = "Connecting"
)

// Replication is one row of SHOW ALL SLAVES STATUS, decoded by column name.
type Replication struct {
	ConnectionName  string
	MasterHost      string // as configured (IPv6 unbracketed)
	MasterPort      int
	MasterUser      string
	SlaveIORunning  ThreadState
	SlaveSQLRunning ThreadState
	SlaveIOState    string
	SlaveSQLState   string // Slave_SQL_Running_State
	// SecondsBehindMaster is nil when MariaDB reports NULL (a thread stopped or not connected).
	SecondsBehindMaster *int64
	LastIOErrno         int
	LastIOError         string
	LastSQLErrno        int
	LastSQLError        string
	UsingGtid           string // No, Slave_Pos, Current_Pos
	GtidIOPos           gtid.List
	GtidSlavePos        gtid.List
	// Heartbeats received since the connection started; increasing = master alive.
	SlaveReceivedHeartbeats uint64
	SlaveHeartbeatPeriod    time.Duration
	MasterLogFile           string
	ReadMasterLogPos        uint64
	RelayMasterLogFile      string
	ExecMasterLogPos        uint64
	MasterServerID          uint32
	SQLDelay                int64
	SQLRemainingDelay       *int64
	MasterSSLAllowed        bool
	ConnectRetry            int
	ParallelMode            string
	// Replication filters (compared across servers by switchover checks).
	ReplicateDoDB, ReplicateIgnoreDB, ReplicateDoTable, ReplicateIgnoreTable string
	ReplicateWildDoTable, ReplicateWildIgnoreTable                           string
	ReplicateDoDomainIDs, ReplicateIgnoreDomainIDs, ReplicateIgnoreServerIDs string
}

// IORunning reports Slave_IO_Running = Yes.
func (r Replication) IORunning() bool { return r.SlaveIORunning == ThreadYes }

// SQLRunning reports Slave_SQL_Running = Yes.
func (r Replication) SQLRunning() bool { return r.SlaveSQLRunning == ThreadYes }

// probeQuery reads every variable of a probe in one round trip. The semi-sync variables
// are built into MariaDB since 10.3; probeQueryNoSemiSync serves servers without them.
const (
	probeQuery = `SELECT @@version, @@server_id, @@gtid_domain_id, @@read_only, @@log_bin,
 @@log_slave_updates, @@binlog_format, @@gtid_strict_mode,
 @@gtid_current_pos, @@gtid_binlog_pos, @@gtid_slave_pos,
 @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_slave_enabled`
	probeQueryNoSemiSync = `SELECT @@version, @@server_id, @@gtid_domain_id, @@read_only, @@log_bin,
 @@log_slave_updates, @@binlog_format, @@gtid_strict_mode,
 @@gtid_current_pos, @@gtid_binlog_pos, @@gtid_slave_pos, 0, 0`
	// dumpThreadsQuery is the fallback count of connected replicas when SHOW SLAVE HOSTS is
	// not allowed; information_schema.PROCESSLIST costs ~1-2 ms against ~0.05 ms.
	dumpThreadsQuery = `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`
)

// MariaDB error numbers the probe reacts to.
const (
	errUnknownSystemVariable = 1193
	errSpecificAccessDenied  = 1227
)

// Probe reads the server's state: one SELECT of the variables, SHOW ALL SLAVES STATUS,
// SHOW SLAVE HOSTS (connected replicas), plus SHOW GLOBAL STATUS for the semi-sync state
// only when semi-sync is enabled. The context bounds the whole probe.
//
// Connected replicas are counted with SHOW SLAVE HOSTS, which lists the replicas whose
// binlog dump thread runs (it needs REPLICATION MASTER ADMIN on 10.5+); without that
// privilege the probe falls back to counting 'Binlog Dump' threads in
// information_schema.PROCESSLIST (needs PROCESS, and is 20-40 times slower).
func (s *Server) Probe(ctx context.Context) (*Status, error) {
	start := time.Now()
	st, err := s.probeVariables(ctx)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", s.addr, err)
	}
	if st.Replications, err = s.replications(ctx); err != nil {
		return nil, fmt.Errorf("probe %s: %w", s.addr, err)
	}
	if st.ConnectedReplicas, err = s.connectedReplicas(ctx); err != nil {
		return nil, fmt.Errorf("probe %s: %w", s.addr, err)
	}
	if st.SemiSyncMasterEnabled || st.SemiSyncSlaveEnabled {
		if err := s.semiSyncStatus(ctx, st); err != nil {
			return nil, fmt.Errorf("probe %s: %w", s.addr, err)
		}
	}
	st.Latency = time.Since(start)
	s.mu.Lock()
	v := st.Version
	s.version = &v
	s.mu.Unlock()
	return st, nil
}

func (s *Server) probeVariables(ctx context.Context) (*Status, error) {
	var (
		version, binlogFormat         string
		serverID, domainID            uint32
		readOnly, logBin, logSlaveUpd bool
		strict, semiMaster, semiSlave bool
		curPos, binPos, slavePos      string
	)
	s.mu.Lock()
	q := probeQuery
	if s.noSemiSyncVars {
		q = probeQueryNoSemiSync
	}
	s.mu.Unlock()
	scan := func(q string) error {
		return s.db.QueryRowContext(ctx, q).Scan(&version, &serverID, &domainID, &readOnly, &logBin,
			&logSlaveUpd, &binlogFormat, &strict, &curPos, &binPos, &slavePos, &semiMaster, &semiSlave)
	}
	err := scan(q)
	if errNumber(err) == errUnknownSystemVariable && q == probeQuery {
		s.mu.Lock()
		s.noSemiSyncVars = true
		s.mu.Unlock()
		err = scan(probeQueryNoSemiSync)
	}
	if err != nil {
		return nil, fmt.Errorf("variables: %w", err)
	}
	st := &Status{
		Version: ParseVersion(version), ServerID: serverID, DomainID: domainID, ReadOnly: readOnly,
		LogBin: logBin, LogSlaveUpdates: logSlaveUpd, BinlogFormat: binlogFormat, GTIDStrictMode: strict,
		SemiSyncMasterEnabled: semiMaster, SemiSyncSlaveEnabled: semiSlave,
	}
	for _, p := range []struct {
		name string
		raw  string
		dst  *gtid.List
	}{{"gtid_current_pos", curPos, &st.GTIDCurrentPos}, {"gtid_binlog_pos", binPos, &st.GTIDBinlogPos}, {"gtid_slave_pos", slavePos, &st.GTIDSlavePos}} {
		l, err := gtid.Parse(p.raw)
		if err != nil {
			return nil, fmt.Errorf("@@%s: %w", p.name, err)
		}
		*p.dst = l
	}
	return st, nil
}

// connectedReplicas counts the replicas reading this server's binlog.
func (s *Server) connectedReplicas(ctx context.Context) (int, error) {
	s.mu.Lock()
	useProcesslist := s.noSlaveHosts
	s.mu.Unlock()
	if !useProcesslist {
		rows, err := s.db.QueryContext(ctx, "SHOW SLAVE HOSTS")
		if err == nil {
			defer rows.Close()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				return 0, fmt.Errorf("show slave hosts: %w", err)
			}
			return n, nil
		}
		if errNumber(err) != errSpecificAccessDenied {
			return 0, fmt.Errorf("show slave hosts: %w", err)
		}
		s.mu.Lock()
		s.noSlaveHosts = true
		s.mu.Unlock()
	}
	var n int
	if err := s.db.QueryRowContext(ctx, dumpThreadsQuery).Scan(&n); err != nil {
		return 0, fmt.Errorf("binlog dump threads: %w", err)
	}
	return n, nil
}

// semiSyncStatus reads Rpl_semi_sync_{master,slave}_status (absent = off).
func (s *Server) semiSyncStatus(ctx context.Context, st *Status) error {
	rows, err := s.db.QueryContext(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl\\_semi\\_sync\\_%\\_status'")
	if err != nil {
		return fmt.Errorf("semi-sync status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, val string
		if err := rows.Scan(&name, &val); err != nil {
			return fmt.Errorf("semi-sync status: %w", err)
		}
		on := strings.EqualFold(val, "ON") || val == "1"
		switch strings.ToLower(name) {
		case "rpl_semi_sync_master_status":
			st.SemiSyncMasterStatus = on
		case "rpl_semi_sync_slave_status":
			st.SemiSyncSlaveStatus = on
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("semi-sync status: %w", err)
	}
	return nil
}

// replications runs SHOW ALL SLAVES STATUS, decoded by column name (scanByName).
func (s *Server) replications(ctx context.Context) ([]Replication, error) {
	rows, err := s.db.QueryContext(ctx, "SHOW ALL SLAVES STATUS")
	if err != nil {
		return nil, fmt.Errorf("show all slaves status: %w", err)
	}
	defer rows.Close()
	var out []Replication
	err = scanByName(rows, func() { out = append(out, Replication{}) },
		func(col string, v sql.NullString) error { return out[len(out)-1].set(col, v) })
	if err != nil {
		return nil, fmt.Errorf("show all slaves status: %w", err)
	}
	return out, nil
}

// set assigns one column. Numeric columns that do not parse are an error (a column whose
// meaning changed); unknown columns are ignored.
func (r *Replication) set(col string, v sql.NullString) error {
	s := v.String
	var err error
	switch strings.ToLower(col) {
	case "connection_name":
		r.ConnectionName = s
	case "master_host":
		r.MasterHost = s
	case "master_port":
		r.MasterPort, err = atoi(s)
	case "master_user":
		r.MasterUser = s
	case "connect_retry":
		r.ConnectRetry, err = atoi(s)
	case "slave_io_running":
		r.SlaveIORunning = ThreadState(s)
	case "slave_sql_running":
		r.SlaveSQLRunning = ThreadState(s)
	case "slave_io_state":
		r.SlaveIOState = s
	case "slave_sql_running_state":
		r.SlaveSQLState = s
	case "seconds_behind_master":
		r.SecondsBehindMaster, err = nullInt(v)
	case "last_io_errno":
		r.LastIOErrno, err = atoi(s)
	case "last_io_error":
		r.LastIOError = s
	case "last_sql_errno":
		r.LastSQLErrno, err = atoi(s)
	case "last_sql_error":
		r.LastSQLError = s
	case "using_gtid":
		r.UsingGtid = s
	case "gtid_io_pos":
		r.GtidIOPos, err = gtid.Parse(s)
	case "gtid_slave_pos":
		r.GtidSlavePos, err = gtid.Parse(s)
	case "slave_received_heartbeats":
		r.SlaveReceivedHeartbeats, err = atou(s)
	case "slave_heartbeat_period":
		var f float64
		if s != "" {
			f, err = strconv.ParseFloat(s, 64)
		}
		r.SlaveHeartbeatPeriod = time.Duration(f * float64(time.Second))
	case "master_log_file":
		r.MasterLogFile = s
	case "read_master_log_pos":
		r.ReadMasterLogPos, err = atou(s)
	case "relay_master_log_file":
		r.RelayMasterLogFile = s
	case "exec_master_log_pos":
		r.ExecMasterLogPos, err = atou(s)
	case "master_server_id":
		var n uint64
		n, err = atou(s)
		r.MasterServerID = uint32(n)
	case "sql_delay":
		var n int
		n, err = atoi(s)
		r.SQLDelay = int64(n)
	case "sql_remaining_delay":
		r.SQLRemainingDelay, err = nullInt(v)
	case "master_ssl_allowed":
		r.MasterSSLAllowed = strings.EqualFold(s, "Yes")
	case "parallel_mode":
		r.ParallelMode = s
	case "replicate_do_db":
		r.ReplicateDoDB = s
	case "replicate_ignore_db":
		r.ReplicateIgnoreDB = s
	case "replicate_do_table":
		r.ReplicateDoTable = s
	case "replicate_ignore_table":
		r.ReplicateIgnoreTable = s
	case "replicate_wild_do_table":
		r.ReplicateWildDoTable = s
	case "replicate_wild_ignore_table":
		r.ReplicateWildIgnoreTable = s
	case "replicate_do_domain_ids":
		r.ReplicateDoDomainIDs = s
	case "replicate_ignore_domain_ids":
		r.ReplicateIgnoreDomainIDs = s
	case "replicate_ignore_server_ids":
		r.ReplicateIgnoreServerIDs = s
	}
	return err
}

func atoi(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}

func atou(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func nullInt(v sql.NullString) (*int64, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v.String, 10, 64)
	if err != nil {
		return nil, err
	}
	return &n, nil
}
