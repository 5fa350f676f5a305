package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/eventlog"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// ServerConn is what the monitor needs of one server. The mariadb package provides the real
// one (see Dial); keeping it an interface keeps the monitor loop free of SQL.
type ServerConn interface {
	// Probe returns the server's facts (identity, state and role fields are left empty).
	Probe(ctx context.Context) (topology.Server, error)
	SetReadOnly(ctx context.Context, on bool) error
	// SetHeartbeatPeriod sets a replication connection's MASTER_HEARTBEAT_PERIOD.
	SetHeartbeatPeriod(ctx context.Context, channel string, period time.Duration) error
	// Isolate ends every client connection and sets read_only (a returning former master).
	Isolate(ctx context.Context) error
	Close() error
}

// ErrAccessDenied is wrapped by a ServerConn's Probe error when the server refused the
// credentials; the server is then ErrorAuth rather than down.
var ErrAccessDenied = errors.New("access denied")

// Dialer opens a connection handle to one server. It must not block on the network: the
// first Probe connects.
type Dialer func(addr ipv6.HostPort) (ServerConn, error)

// MonitorConfig is what one cluster's monitor needs, extracted from the configuration.
type MonitorConfig struct {
	Cluster          string
	Hosts            []ipv6.HostPort
	Ticker           time.Duration // monitoring-ticker
	ProbeTimeout     time.Duration // upper bound of one probe (db-servers-connect-timeout)
	MaxFail          int           // failover-falsepositive-ping-counter
	MaxLag           int64         // failover-max-slave-delay
	CheckLag         bool          // check-replication-state
	ReadOnlyReplicas bool          // failover-readonly-state
	HeartbeatCheck   bool          // failover-falsepositive-heartbeat
	HeartbeatTimeout time.Duration // silence after which replicas agree a source is dead (derived, see MonitorConfigFrom)
	// HeartbeatPeriod is the MASTER_HEARTBEAT_PERIOD set on every replica
	// (force-slave-heartbeat); 0 leaves replicas as they are.
	HeartbeatPeriod time.Duration
	Ignored         []ipv6.HostPort
	IgnoredReadOnly []ipv6.HostPort
	Preferred       []ipv6.HostPort
	// SaveDiverged saves the transactions a returning former master holds that the cluster
	// never received (autorejoin-backup-binlog); nil does not save them.
	SaveDiverged   *SaveConfig
	AutoRejoin     bool // autorejoin; also moves the replicas of a dead relay
	FlattenTree    bool // replication-tree-flatten
	RelayKeepDepth bool // replication-relay-keep-depth
	Failover       FailoverConfig
}

// Monitor watches one cluster: each tick it probes every server in parallel, builds a new
// immutable snapshot, analyses it, applies the enforcements and records state changes.
type Monitor struct {
	cfg    MonitorConfig
	dial   Dialer
	events *eventlog.Log
	log    *logrus.Entry

	tickMu sync.Mutex // one tick at a time: Run and Tick callers may race
	conns  map[ipv6.HostPort]ServerConn
	tick   uint64
	paused atomic.Bool

	snap  atomic.Pointer[topology.Snapshot]
	trend atomic.Pointer[TrendHistory] // the short history of the UI's charts (history.go)

	maintenance sync.Map // ipv6.HostPort -> bool, set by operators

	histMu      sync.Mutex
	hist        FailoverHistory
	histLoaded  bool
	lastRefusal string // last automatic-failover refusal reported, owned by Run

	// lead is the cluster's leadership among several managers; nil when alone.
	lead Leadership
	// store keeps the failover history and the plan journal.
	store StateStore
	// wasLeading is what Run saw last: a manager that becomes leader resumes the plan the
	// previous leader left, and reads the history again (owned by Run).
	wasLeading bool

	// hb writes and reads the original's heartbeat table (monitoring-write-heartbeat), nil
	// when not asked for.
	hb atomic.Pointer[Heartbeat]

	// watch runs a never-ending query on the master; wake asks the loop for a tick now
	// (the watch failed: the master died).
	watch    *masterWatch
	wake     chan struct{}
	wakeOnce sync.Once

	// fence is a connection held to the master, used by a failover to queue read_only on
	// a master that froze (mariadb.Fence). tickMu is held to use it.
	fence      *mariadb.Fence
	fenceAddr  ipv6.HostPort
	fenceCheck time.Time
	// fenced lists the former masters isolated since they last answered again.
	fencedMu sync.Mutex
	fenced   map[ipv6.HostPort]bool
	// saveRetry holds, per former master whose diverged transactions could not be saved
	// yet, when to try again (owned by Run); once saved, the history says where they are.
	saveRetry map[ipv6.HostPort]saveAttempt

	// The action lock: one topology change at a time (see Act).
	actMu    sync.Mutex
	running  *running
	observer atomic.Pointer[func(ActionEvent)]
	journal  *Journal
	seed     seeding // reseed plans' data side (cluster/reseed.go)

	// Router state, under tickMu: which routers were bootstrapped, and the last error each
	// reported (logged once, not every tick).
	routerReady []bool
	routerErr   []string
}

// NewMonitor prepares a monitor; nothing touches the network until the first tick.
func NewMonitor(cfg MonitorConfig, dial Dialer, events *eventlog.Log, log *logrus.Logger) *Monitor {
	if cfg.Ticker <= 0 {
		cfg.Ticker = 2 * time.Second
	}
	if cfg.MaxFail < 1 {
		cfg.MaxFail = 1
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	store := NewFileStore(cfg.Failover.Exec.StateDir, cfg.Cluster)
	return &Monitor{
		cfg:     cfg,
		dial:    dial,
		events:  events,
		log:     log.WithField("cluster", cfg.Cluster),
		conns:   map[ipv6.HostPort]ServerConn{},
		store:   store,
		journal: NewJournal(store),
	}
}

// SetShared makes the monitor one of several managers of its cluster: it acts only while
// it leads (lead), each step guarded, and keeps the failover history and plan journal in
// the shared store. Call it before Run.
func (m *Monitor) SetShared(lead Leadership, store StateStore) {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	m.lead, m.store, m.journal = lead, store, NewJournal(store)
	m.reloadHistory()
}

// Leading reports whether this manager may act on the cluster (always, alone).
func (m *Monitor) Leading() bool { return m.lead == nil || m.lead.Leading() }

// Leadership returns the cluster's leadership, nil for a lone manager.
func (m *Monitor) Leadership() Leadership { return m.lead }

// SetRouters sets the traffic routers; call it before Run.
func (m *Monitor) SetRouters(rs []router.Router) {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	m.cfg.Failover.Routers = rs
	m.routerReady, m.routerErr = nil, nil
}

// Snapshot returns the latest published snapshot, nil before the first tick.
func (m *Monitor) Snapshot() *topology.Snapshot { return m.snap.Load() }

// Pause stops enforcement while a failover or switchover changes the topology on purpose.
func (m *Monitor) Pause(on bool) { m.paused.Store(on) }

// SetMaintenance puts a server in or out of maintenance: routers are told at once, the
// snapshot shows it from the next tick on.
func (m *Monitor) SetMaintenance(ctx context.Context, addr ipv6.HostPort, on bool) error {
	m.maintenance.Store(addr, on)
	var errs []error
	for _, r := range m.cfg.Failover.Routers {
		rctx, cancel := context.WithTimeout(ctx, m.probeTimeout()+2*time.Second)
		if err := r.Maintenance(rctx, addr, on); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name(), err))
		}
		cancel()
	}
	state := "off"
	if on {
		state = "on"
	}
	m.addEvent(eventlog.Event{Kind: "maintenance", Server: addr.String(), Message: "maintenance " + state})
	return errors.Join(errs...)
}

// probeTimeout bounds one probe: at most one tick, so a stalled server never delays the
// verdict on the others, but never below 100 ms nor above the configured connect timeout.
func (m *Monitor) probeTimeout() time.Duration {
	t := m.cfg.Ticker
	if t < 100*time.Millisecond {
		t = 100 * time.Millisecond
	}
	if m.cfg.ProbeTimeout > 0 && m.cfg.ProbeTimeout < t {
		t = m.cfg.ProbeTimeout
	}
	return t
}

// Run ticks until ctx is done, then closes the connections. It first finishes or rolls
// back a plan a previous manager left unfinished; then each tick's recoveries run (in
// automatic failover mode, the failover of a master confirmed dead).
func (m *Monitor) Run(ctx context.Context) error {
	defer m.Close()
	if m.Leading() {
		m.Resume(ctx)
		m.wasLeading = true
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-m.wakeChan():
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		start := time.Now()
		s := m.Tick(ctx)
		leading := m.Leading()
		if leading != m.wasLeading {
			m.leadershipChanged(ctx, leading)
			s = m.Snapshot() // a resumed plan changed the topology since that tick
		}
		if ctx.Err() == nil && s != nil && leading {
			m.saveDiverged(ctx, s)
			if recs := m.recoveries(s, false); len(recs) > 0 {
				m.recover(ctx, s, recs)
				s = m.Snapshot()
			} else {
				m.lastRefusal = ""
			}
		}
		// Keep the cadence: the next tick starts one interval after this one started.
		wait := m.nextInterval(s) - time.Since(start)
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// leadershipChanged handles this manager taking or losing the cluster's leadership. A new
// leader reads the shared history again and finishes (or rolls back) the plan the previous
// leader left in the journal before anything else.
func (m *Monitor) leadershipChanged(ctx context.Context, leading bool) {
	m.wasLeading = leading
	if !leading {
		name, addr := "", ""
		if m.lead != nil {
			name, addr = m.lead.Leader()
		}
		m.log.WithFields(logrus.Fields{"leader": name, "leader_addr": addr}).Warn("no longer leading this cluster: monitoring only")
		m.addEvent(eventlog.Event{Kind: "leadership", Message: "standby: another manager leads (" + name + ")"})
		return
	}
	m.log.Info("leading this cluster")
	m.addEvent(eventlog.Event{Kind: "leadership", Message: "this manager leads the cluster"})
	m.reloadHistory()
	m.routerReady = nil // bootstrap the routers again: the previous leader may have moved them
	m.Resume(ctx)
}

// Tick runs one monitoring round and returns the snapshot it published.
func (m *Monitor) Tick(ctx context.Context) *topology.Snapshot {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	return m.tickLocked(ctx)
}

func (m *Monitor) tickLocked(ctx context.Context) *topology.Snapshot {
	m.tick++
	obs := m.probeAll(ctx)
	prev := m.snap.Load()
	if ctx.Err() != nil {
		// Probes cut short by shutdown say nothing about the servers: publish nothing.
		return prev
	}
	snap := Discover(obs, prev, m.discoverOptions(), m.tick, time.Now())
	aopt := AnalyzeOptions{ReadOnlyReplicas: m.cfg.ReadOnlyReplicas, IgnoredReadOnly: set(m.cfg.IgnoredReadOnly), MaxLag: m.cfg.MaxLag,
		HeartbeatCheck: m.cfg.HeartbeatCheck, HeartbeatTimeout: m.cfg.HeartbeatTimeout, HeartbeatPeriod: m.cfg.HeartbeatPeriod,
		FormerMasters: m.History().formerMasters()}
	snap.Problems = Analyze(snap, aopt)
	snap.IsFailable = Failable(snap.Problems)
	m.snap.Store(snap)
	m.recordTrend(snap)
	m.recordChanges(prev, snap)
	if !m.Leading() {
		return snap // a standby monitors, never acts
	}
	m.forgetFenced(snap)
	m.enforce(ctx, snap)
	m.keepFence(ctx, snap)
	m.keepWatch(snap)
	m.reconcileRouters(ctx, snap)
	return snap
}

func (m *Monitor) discoverOptions() DiscoverOptions {
	maint := map[ipv6.HostPort]bool{}
	m.maintenance.Range(func(k, v any) bool {
		if v.(bool) {
			maint[k.(ipv6.HostPort)] = true
		}
		return true
	})
	return DiscoverOptions{
		Cluster: m.cfg.Cluster, MaxFail: m.cfg.MaxFail, MaxLag: m.cfg.MaxLag, CheckLag: m.cfg.CheckLag,
		Maintenance: maint, Ignored: set(m.cfg.Ignored), Preferred: set(m.cfg.Preferred),
		Promoted: m.History().Promoted,
	}
}

func set(l []ipv6.HostPort) map[ipv6.HostPort]bool {
	out := make(map[ipv6.HostPort]bool, len(l))
	for _, a := range l {
		out[a] = true
	}
	return out
}

func (m *Monitor) conn(addr ipv6.HostPort) (ServerConn, error) {
	if c, ok := m.conns[addr]; ok {
		return c, nil
	}
	c, err := m.dial(addr)
	if err != nil {
		return nil, err
	}
	m.conns[addr] = c
	return c, nil
}

// probeAll probes every server in parallel; the goroutines end before it returns.
func (m *Monitor) probeAll(ctx context.Context) []Observation {
	obs := make([]Observation, len(m.cfg.Hosts))
	conns := make([]ServerConn, len(m.cfg.Hosts))
	for i, a := range m.cfg.Hosts {
		obs[i].Addr = a
		c, err := m.conn(a)
		if err != nil {
			obs[i].Error = err.Error()
			obs[i].At = time.Now()
			continue
		}
		conns[i] = c
	}
	timeout := m.probeTimeout()
	var wg sync.WaitGroup
	for i := range obs {
		if conns[i] == nil {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			facts, err := conns[i].Probe(pctx)
			o := &obs[i]
			o.At, o.Latency = start, time.Since(start)
			if err != nil {
				o.Error = err.Error()
				o.AuthError = errors.Is(err, ErrAccessDenied)
				return
			}
			o.Reachable, o.Facts = true, facts
		}(i)
	}
	wg.Wait()
	return obs
}

// recordChanges logs and records every state change and topology change of this tick.
func (m *Monitor) recordChanges(prev, snap *topology.Snapshot) {
	for i := range snap.Servers {
		s := &snap.Servers[i]
		if s.State == s.PrevState {
			continue
		}
		fields := logrus.Fields{"server": s.Addr.String(), "old": s.PrevState, "new": s.State}
		msg := ""
		if s.ProbeError != "" {
			fields["error"] = s.ProbeError
			msg = s.ProbeError
		}
		m.log.WithFields(fields).Info("server state changed")
		m.addEvent(eventlog.Event{Server: s.Addr.String(), Kind: "state", OldState: string(s.PrevState), NewState: string(s.State), Message: msg})
	}
	oldMaster, newMaster := "", ""
	if pm, ok := prev.MasterServer(); ok {
		oldMaster = pm.Addr.String()
	}
	if nm, ok := snap.MasterServer(); ok {
		newMaster = nm.Addr.String()
	}
	oldKind := topology.Kind("")
	if prev != nil {
		oldKind = prev.Kind
	}
	if oldMaster != newMaster || oldKind != snap.Kind {
		m.log.WithFields(logrus.Fields{"master": newMaster, "previous_master": oldMaster, "topology": snap.Kind}).Info("topology changed")
		m.addEvent(eventlog.Event{Server: newMaster, Kind: "topology", Message: fmt.Sprintf("topology %s, master %q (was %q)", snap.Kind, newMaster, oldMaster)})
	}
	oldProblems := map[string]bool{}
	if prev != nil {
		for _, p := range prev.Problems {
			oldProblems[string(p.Code)+"@"+p.Server] = true
		}
	}
	for _, p := range snap.Problems {
		if !oldProblems[string(p.Code)+"@"+p.Server] {
			m.log.WithFields(logrus.Fields{"problem": p.Code, "server": p.Server, "severity": p.Severity}).Warn(p.Message)
			m.addEvent(eventlog.Event{Server: p.Server, Kind: "problem", Message: string(p.Code) + ": " + p.Message})
		}
	}
}

func (m *Monitor) addEvent(e eventlog.Event) {
	if m.events == nil {
		return
	}
	e.Cluster = m.cfg.Cluster
	if _, err := m.events.Add(e); err != nil {
		m.log.WithError(err).Warn("event not written to the event log file")
	}
}

func (m *Monitor) recoveries(snap *topology.Snapshot, paused bool) []Recovery {
	m.fencedMu.Lock()
	fenced := make(map[ipv6.HostPort]bool, len(m.fenced))
	for a := range m.fenced {
		fenced[a] = true
	}
	m.fencedMu.Unlock()
	return Recoveries(snap, m.withSeed(RecoveryOptions{
		ReadOnlyReplicas: m.cfg.ReadOnlyReplicas, IgnoredReadOnly: set(m.cfg.IgnoredReadOnly), Paused: paused,
		AutoRejoin: m.cfg.AutoRejoin, AutoFailover: m.cfg.Failover.Mode == "automatic", Fenced: fenced,
	}))
}

// forgetFenced forgets the isolation of servers that stopped answering: when they come
// back they are isolated again.
func (m *Monitor) forgetFenced(snap *topology.Snapshot) {
	m.fencedMu.Lock()
	defer m.fencedMu.Unlock()
	for i := range snap.Servers {
		if !snap.Servers[i].Reachable {
			delete(m.fenced, snap.Servers[i].Addr)
		}
	}
}

// correction runs one correction of the recovery table on a server.
func (m *Monitor) correction(ctx context.Context, c ServerConn, snap *topology.Snapshot, a Recovery) error {
	switch a.Kind {
	case RecoverSetReadOnly, RecoverSetWritable:
		return c.SetReadOnly(ctx, a.Kind == RecoverSetReadOnly)
	case RecoverFence:
		if err := c.Isolate(ctx); err != nil {
			return err
		}
		m.fencedMu.Lock()
		if m.fenced == nil {
			m.fenced = map[ipv6.HostPort]bool{}
		}
		m.fenced[a.Server] = true
		m.fencedMu.Unlock()
		return nil
	case RecoverHeartbeat:
		srv, ok := snap.Find(a.Server)
		if !ok {
			return nil
		}
		var errs []error
		for _, ch := range srv.Replications {
			if ch.Healthy() {
				errs = append(errs, c.SetHeartbeatPeriod(ctx, ch.Channel, m.cfg.HeartbeatPeriod))
			}
		}
		return errors.Join(errs...)
	}
	return nil
}

// enforce applies the corrections the recovery table calls for (read_only, heartbeat
// period, isolation of a returning former master), each bounded by the probe timeout. The
// plans it calls for run after the tick, through Act.
func (m *Monitor) enforce(ctx context.Context, snap *topology.Snapshot) {
	for _, a := range m.recoveries(snap, m.paused.Load()) {
		switch a.Kind {
		case RecoverSetReadOnly, RecoverSetWritable, RecoverFence, RecoverHeartbeat:
		default:
			continue
		}
		c, ok := m.conns[a.Server]
		if !ok {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, m.probeTimeout()+5*time.Second)
		start := time.Now()
		err := m.correction(actx, c, snap, a)
		cancel()
		e := eventlog.Event{Server: a.Server.String(), Kind: "enforce", Message: string(a.Kind) + ": " + a.Reason, Duration: time.Since(start)}
		entry := m.log.WithFields(logrus.Fields{"server": a.Server.String(), "action": a.Kind})
		if err != nil {
			e.Error = err.Error()
			entry.WithError(err).Warn("correction failed")
		} else {
			entry.Info(a.Reason + ": corrected")
		}
		m.addEvent(e)
	}
}

// keepFence holds a fence connection to a healthy master (mariadb.Fence), opened once per
// master and checked every 10 s, so that a failover can queue read_only on it if it
// freezes. tickMu is held.
func (m *Monitor) keepFence(ctx context.Context, snap *topology.Snapshot) {
	ms, ok := snap.MasterServer()
	if !ok || ms.State != topology.StateMaster || m.paused.Load() {
		return
	}
	if m.fence != nil && ipv6.SameAddr(m.fenceAddr, ms.Addr) {
		if time.Since(m.fenceCheck) < 10*time.Second {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, m.probeTimeout())
		alive := m.fence.Alive(cctx)
		cancel()
		m.fenceCheck = time.Now()
		if alive {
			return
		}
	}
	if m.fence != nil {
		m.fence.Close()
		m.fence = nil
	}
	s, err := m.sqlServer(ms.Addr)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, m.probeTimeout())
	defer cancel()
	if f, err := s.OpenFence(cctx); err == nil {
		m.fence, m.fenceAddr, m.fenceCheck = f, ms.Addr, time.Now()
	}
}

// armFence queues read_only on the old master through the held fence (a failover's
// fence-old-master step). tickMu is held by the running plan.
func (m *Monitor) armFence(ctx context.Context, addr ipv6.HostPort) (string, error) {
	f := m.fence
	if f == nil || !ipv6.SameAddr(m.fenceAddr, addr) {
		return "no connection held to the old master: nothing to queue", nil
	}
	m.fence = nil
	answered, err := f.Arm(ctx, fenceWait)
	switch {
	case err != nil:
		return "the old master is gone (its connection failed): nothing to fence", nil
	case answered:
		return "", nil // it answered: read-only now
	}
	return "queued: the old master ends its clients and sets read_only=ON the moment it answers again", nil
}

// fenceWait is how long a failover waits for the old master to answer its fence: long
// enough for the statement to leave, short enough not to delay the promotion.
const fenceWait = 30 * time.Millisecond

// Close closes every server connection. Call it only once Run has returned.
func (m *Monitor) Close() {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	m.stopWatchLocked()
	if m.fence != nil {
		m.fence.Close()
		m.fence = nil
	}
	for a, c := range m.conns {
		c.Close()
		delete(m.conns, a)
	}
}

// reconcileRouters bootstraps each router on the first tick that knows a master, then keeps
// its routing in line with every snapshot. Skipped while a failover or switchover runs: the
// executor tells the routers itself. tickMu is held.
func (m *Monitor) reconcileRouters(ctx context.Context, snap *topology.Snapshot) {
	routers := m.cfg.Failover.Routers
	if len(routers) == 0 || m.paused.Load() {
		return
	}
	if len(m.routerReady) != len(routers) {
		m.routerReady, m.routerErr = make([]bool, len(routers)), make([]string, len(routers))
	}
	if _, ok := snap.MasterServer(); !ok {
		return
	}
	for i, r := range routers {
		rctx, cancel := context.WithTimeout(ctx, m.probeTimeout()+2*time.Second)
		var err error
		if !m.routerReady[i] {
			if err = r.Bootstrap(rctx, snap); err == nil {
				m.routerReady[i] = true
				m.log.WithField("router", r.Name()).Info("router bootstrapped")
				m.addEvent(eventlog.Event{Kind: "router", Message: r.Name() + " bootstrapped"})
			}
		} else {
			err = r.Reconcile(rctx, snap)
		}
		cancel()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != m.routerErr[i] {
			m.routerErr[i] = msg
			if err != nil {
				m.log.WithField("router", r.Name()).WithError(err).Warn("router not in line with the topology")
				m.addEvent(eventlog.Event{Kind: "router", Message: r.Name(), Error: msg})
			} else {
				m.log.WithField("router", r.Name()).Info("router back in line")
			}
		}
	}
}
