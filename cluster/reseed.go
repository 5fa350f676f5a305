package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"replication-manager-pro/backup"
	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// PlanReseed replaces a replica's data from a backup (or a donor's stream) and makes it
// replicate from the master at the backup's position: a new empty server, a wiped one, or a
// former master that diverged.
const PlanReseed PlanKind = "reseed"

// Steps of a reseed.
const (
	StepSeedPrepare   StepKind = "seed-prepare"   // replication stopped and forgotten, read-only
	StepSeedRestore   StepKind = "seed-restore"   // data replaced (Step.Seed says from what)
	StepSeedReplicate StepKind = "seed-replicate" // binary log reset, replicate from the master at the data's position
)

// RecoverReseed is the recovery that asks for a reseed plan: autoseed of an empty server,
// autorejoin of a diverged former master whose extra transactions were saved.
const RecoverReseed RecoveryKind = "reseed"

// Seeder is the data side of a reseed, provided by package backup (*backup.Seeder).
type Seeder interface {
	Backups() ([]backup.Meta, error)
	CanRestorePhysical(target ipv6.HostPort) bool
	CanStreamPhysical(ctx context.Context, donor ipv6.HostPort) bool
	Restore(ctx context.Context, target ipv6.HostPort, src backup.Source) (string, error)
}

// SeedConfig is how a cluster reseeds.
type SeedConfig struct {
	Seeder   Seeder
	AutoSeed bool   // autoseed: an empty server is seeded without anyone asking
	User     string // db-servers-credential: the reseed's own connections
	Password string
	// Kind restricts the backups used ("physical", "logical"); "" takes the newest usable.
	Kind backup.Kind

	failures seedFailures
}

// seedBackoff is how long an automatic reseed that failed waits before it is tried again
// (doubling on each failure, up to seedBackoffMax): a corrupt backup or a full disk must
// not make the monitor reseed every tick.
const (
	seedBackoff    = 30 * time.Second
	seedBackoffMax = 30 * time.Minute
)

// seedFailures remembers the automatic reseeds that failed.
type seedFailures struct {
	mu    sync.Mutex
	until map[ipv6.HostPort]time.Time
	wait  map[ipv6.HostPort]time.Duration
}

func (f *seedFailures) failed(a ipv6.HostPort, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.until == nil {
		f.until, f.wait = map[ipv6.HostPort]time.Time{}, map[ipv6.HostPort]time.Duration{}
	}
	w := f.wait[a] * 2
	if w < seedBackoff {
		w = seedBackoff
	}
	if w > seedBackoffMax {
		w = seedBackoffMax
	}
	f.wait[a], f.until[a] = w, now.Add(w)
}

func (f *seedFailures) succeeded(a ipv6.HostPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.until, a)
	delete(f.wait, a)
}

func (f *seedFailures) held(now time.Time) map[ipv6.HostPort]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[ipv6.HostPort]bool{}
	for a, t := range f.until {
		if now.Before(t) {
			out[a] = true
		}
	}
	return out
}

// seeding holds a monitor's SeedConfig (set by SetSeeding; nil: no reseed).
type seeding = atomic.Pointer[SeedConfig]

// SetSeeding enables reseed plans with the given data side; autoseed and the reseed of
// diverged former masters (with autorejoin) then run by themselves.
func (m *Monitor) SetSeeding(c *SeedConfig) { m.seed.Store(c) }

// ReseedOptions are what DecideReseed depends on beyond the snapshot.
type ReseedOptions struct {
	Backups      []backup.Meta
	Kind         backup.Kind
	Physical     bool                   // a physical backup can be restored into the target
	PhysicalFrom map[ipv6.HostPort]bool // donors a physical stream can be taken from
	Saved        map[ipv6.HostPort]bool // former masters whose diverged transactions are saved
	Automatic    bool                   // the monitor asks (autoseed, autorejoin)
	Force        bool                   // an operator reseeds a diverged server whose transactions are not saved
	Empty        bool                   // autoseed: refuse a server holding user databases
}

// DecideReseed decides how to reseed target: the newest usable backup whose position the
// master holds (a backup with transactions the master lacks would make the target diverge),
// else a stream from the healthiest replica (the master when no replica qualifies). Pure.
func DecideReseed(s *topology.Snapshot, target ipv6.HostPort, o ReseedOptions) Plan {
	p := Plan{Kind: PlanReseed, Cluster: s.Cluster, OldMaster: target}
	master, ok := s.MasterServer()
	if !ok || !master.Reachable {
		return refusal(p, RefuseNoMaster, "no live master to reseed from")
	}
	p.NewMaster = master.Addr
	srv, ok := s.Find(target)
	if !ok {
		return refusal(p, RefuseUnknownServer, "%s is not a server of cluster %s", target, s.Cluster)
	}
	p.OldMaster = srv.Addr
	if ipv6.SameAddr(srv.Addr, master.Addr) {
		return refusal(p, RefuseNothingToDo, "%s is the master: reseed a replica", target)
	}
	if !srv.Reachable {
		return refusal(p, RefuseMasterDown, "%s does not answer: start it (empty if need be) before a reseed", target)
	}
	if problemOn(s, topology.FormerMasterDiverged, srv.Addr) && !o.Saved[srv.Addr] && !o.Force {
		return refusal(p, RefuseDiverged, "%s holds transactions the cluster never received and they are not saved yet: a reseed would throw them away (use --force)", target)
	}
	var src *backup.Source
	for _, b := range o.Backups {
		if !backup.Usable(b) || (o.Kind != "" && b.Kind != o.Kind) || (b.Kind == backup.Physical && !o.Physical) {
			continue
		}
		pos, err := gtid.Parse(b.GTID)
		if err != nil || !master.CurrentPos.Contains(pos) {
			continue // taken on a server that diverged, or not parseable
		}
		src = &backup.Source{Backup: b.ID, Kind: b.Kind, GTID: b.GTID}
		break
	}
	if src == nil {
		donor, ok := pickDonor(s, srv.Addr)
		if !ok {
			return refusal(p, RefuseNoCandidate, "no usable backup and no healthy server to stream from")
		}
		kind := backup.Logical
		if o.Physical && o.PhysicalFrom[donor] && o.Kind != backup.Logical {
			kind = backup.Physical
		}
		if o.Kind == backup.Physical && kind != backup.Physical {
			return refusal(p, RefuseNoCandidate, "no usable physical backup, and no physical stream possible from %s into %s", donor, target)
		}
		src = &backup.Source{Donor: donor.String(), Kind: kind}
	}
	src.RequireEmpty = o.Empty
	p.Steps = []Step{
		{Kind: StepSeedPrepare, Server: srv.Addr, Detail: "stop and forget replication, read-only"},
		{Kind: StepSeedRestore, Server: srv.Addr, Detail: "data replaced from the " + src.String(), Seed: src},
		{Kind: StepSeedReplicate, Server: srv.Addr, Detail: "replicate from " + master.Addr.String() + " at the data's position"},
	}
	return p
}

// pickDonor chooses the server a stream is taken from: a replica of the master replicating
// without lag (the least lagging), else the master itself.
func pickDonor(s *topology.Snapshot, target ipv6.HostPort) (ipv6.HostPort, bool) {
	best, bestLag := -1, int64(1<<62)
	for i := range s.Servers {
		c := &s.Servers[i]
		if i == s.Master || ipv6.SameAddr(c.Addr, target) || !c.Reachable || c.Maintenance || !replicating(c) {
			continue
		}
		r, _ := c.PrimaryReplication()
		lag := int64(0)
		if r.Lag != nil {
			lag = *r.Lag
		}
		if lag < bestLag {
			best, bestLag = i, lag
		}
	}
	if best >= 0 {
		return s.Servers[best].Addr, true
	}
	if m, ok := s.MasterServer(); ok && m.Reachable {
		return m.Addr, true
	}
	return ipv6.HostPort{}, false
}

// seedRecoveries are the reseeds autoseed asks for: every reachable configured server
// outside replication that holds no GTID at all (new, or wiped) while the master has some.
// Pure.
func seedRecoveries(s *topology.Snapshot, opt RecoveryOptions) []Recovery {
	if !opt.AutoSeed {
		return nil
	}
	master, ok := s.MasterServer()
	if !ok || !master.Reachable || master.State != topology.StateMaster || len(master.CurrentPos) == 0 {
		return nil
	}
	var out []Recovery
	for i := range s.Servers {
		srv := &s.Servers[i]
		if i == s.Master || !srv.Reachable || srv.Maintenance || srv.IsReplica() || len(srv.CurrentPos) > 0 {
			continue
		}
		if _, former := opt.FormerMasters[srv.Addr]; former || opt.SeedHold[srv.Addr] {
			continue
		}
		out = append(out, Recovery{Server: srv.Addr, Kind: RecoverReseed, Reason: "autoseed: " + srv.Addr.String() + " holds no data of the cluster"})
	}
	return out
}

// withSeed adds the reseed settings to the recovery options.
func (m *Monitor) withSeed(o RecoveryOptions) RecoveryOptions {
	c := m.seed.Load()
	if c == nil {
		return o
	}
	o.AutoSeed = c.AutoSeed
	o.SeedHold = c.failures.held(time.Now())
	o.Saved = map[ipv6.HostPort]bool{}
	o.FormerMasters = map[ipv6.HostPort]bool{}
	for _, f := range m.History().FormerMasters {
		o.FormerMasters[f.Addr] = true
		if f.Saved != "" {
			o.Saved[f.Addr] = true
		}
	}
	return o
}

// decideReseed gathers what DecideReseed needs and decides.
func (m *Monitor) decideReseed(s *topology.Snapshot, req ActionRequest) Plan {
	p := Plan{Kind: PlanReseed, Cluster: s.Cluster}
	c := m.seed.Load()
	if c == nil || c.Seeder == nil {
		return refusal(p, RefuseUnsupportedKind, "reseed is not available: no backup store configured for this cluster")
	}
	if req.Target == nil {
		return refusal(p, RefuseUnknownServer, "reseed needs a server")
	}
	backups, err := c.Seeder.Backups()
	if err != nil {
		m.log.WithError(err).Warn("backups not listed: a reseed can only stream")
	}
	kind := c.Kind
	if req.SeedKind != "" {
		kind = backup.Kind(req.SeedKind)
	}
	o := ReseedOptions{Backups: backups, Kind: kind, Physical: c.Seeder.CanRestorePhysical(*req.Target),
		PhysicalFrom: map[ipv6.HostPort]bool{}, Saved: map[ipv6.HostPort]bool{}, Automatic: req.Automatic, Force: req.Force}
	for _, f := range m.History().FormerMasters {
		if f.Saved != "" {
			o.Saved[f.Addr] = true
		}
	}
	if req.Automatic {
		srv, ok := s.Find(*req.Target)
		o.Empty = ok && !problemOn(s, topology.FormerMasterDiverged, srv.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range s.Servers {
		if s.Servers[i].Reachable && c.Seeder.CanStreamPhysical(ctx, s.Servers[i].Addr) {
			o.PhysicalFrom[s.Servers[i].Addr] = true
		}
	}
	return DecideReseed(s, *req.Target, o)
}

// Reseed decides and, unless dryRun, runs a reseed of target.
func (m *Monitor) Reseed(ctx context.Context, target ipv6.HostPort, dryRun, force bool, origin string) (Plan, *Result, error) {
	return m.Act(ctx, ActionRequest{Kind: PlanReseed, Target: &target, DryRun: dryRun, Force: force, Origin: origin, Wait: OperatorWait})
}

// seedServer opens a connection of the reseed's own to a server: the plan runs without
// the monitor's tick lock, so it does not share the monitor's handles.
func (x *Executor) seedServer(addr ipv6.HostPort) (*mariadb.Server, error) {
	if x.seeding == nil {
		return nil, fmt.Errorf("reseed of %s: no seeding configured", addr)
	}
	return mariadb.Open(addr, x.seeding.User, x.seeding.Password, mariadb.Options{ReadTimeout: time.Minute, WriteTimeout: time.Minute})
}

// seedStep runs one step of a reseed. Every failure aborts the plan: a server whose data
// could not be replaced must not be repointed.
func (x *Executor) seedStep(ctx context.Context, p Plan, st Step) (skipped string, err error) {
	if x.seeding != nil {
		defer func() {
			switch {
			case err != nil:
				x.seeding.failures.failed(st.Server, time.Now())
			case st.Kind == StepSeedReplicate:
				x.seeding.failures.succeeded(st.Server)
			}
		}()
	}
	switch st.Kind {
	case StepSeedPrepare:
		return "", x.seedPrepare(ctx, st)
	case StepSeedRestore:
		if x.seeding == nil || x.seeding.Seeder == nil || st.Seed == nil {
			return "", errAbort{fmt.Errorf("reseed of %s: nothing to restore from", st.Server)}
		}
		pos, err := x.seeding.Seeder.Restore(ctx, st.Server, *st.Seed)
		if err != nil {
			return "", errAbort{err}
		}
		l, err := gtid.Parse(pos)
		if err != nil {
			return "", errAbort{fmt.Errorf("reseed of %s: position %q: %w", st.Server, pos, err)}
		}
		x.setState(func(rs *RunState) { rs.SeedPos = l })
		return "", nil
	case StepSeedReplicate:
		return "", x.seedReplicate(ctx, p, st)
	}
	return "", fmt.Errorf("unknown step %q", st.Kind)
}

func (x *Executor) seedPrepare(ctx context.Context, st Step) error {
	s, err := x.seedServer(st.Server)
	if err != nil {
		return errAbort{err}
	}
	defer s.Close()
	sctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	if st.Seed != nil && st.Seed.RequireEmpty {
		// Checked again at run time: autoseed never overwrites data someone put there.
		dbs, err := s.UserDatabases(sctx)
		if err != nil {
			return errAbort{err}
		}
		if len(dbs) > 0 {
			return errAbort{fmt.Errorf("autoseed of %s refused: it holds databases %v (reseed it by hand to replace them)", st.Server, dbs)}
		}
	}
	if err := s.SetReadOnly(sctx, true); err != nil {
		return errAbort{err}
	}
	if err := s.StopReplication(sctx); err != nil {
		return errAbort{err}
	}
	return nil
}

func (x *Executor) seedReplicate(ctx context.Context, p Plan, st Step) error {
	pos := x.getState().SeedPos
	if len(pos) == 0 && st.Seed != nil && st.Seed.GTID != "" {
		pos, _ = gtid.Parse(st.Seed.GTID)
	}
	if len(pos) == 0 {
		return errAbort{fmt.Errorf("reseed of %s: the data's position is unknown", st.Server)}
	}
	s, err := x.seedServer(st.Server)
	if err != nil {
		return err
	}
	defer s.Close()
	sctx, cancel := x.sqlCtx(ctx)
	defer cancel()
	// The restored data carries no binary log of its own: its position is the slave
	// position, so the server holds exactly what the master had at that point.
	if err := s.ResetBinaryLog(sctx); err != nil {
		return err
	}
	return s.ReplicateFrom(sctx, x.replicate(st.Server, p.NewMaster, x.cfg.Channel, pos, true))
}

// isSeedStep reports the steps seedStep runs.
func isSeedStep(k StepKind) bool {
	return k == StepSeedPrepare || k == StepSeedRestore || k == StepSeedReplicate
}
