package haproxy

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// DefaultResync is how often Reconcile re-reads HAProxy's slot states instead of trusting
// what it applied last (HAProxy restarted, an operator used the socket).
const DefaultResync = 10 * time.Second

// Router drives one HAProxy whose configuration Config generated, through its runtime API.
// Its methods may be called from several goroutines (the monitor's tick, the executor, the
// API); they are serialised.
type Router struct {
	name   string
	client *Client
	layout Layout
	rules  Rules
	log    *logrus.Entry
	resync time.Duration

	mu       sync.Mutex
	known    map[Slot]bool       // slots HAProxy has, from the last sync
	applied  map[Slot]AdminState // what HAProxy runs, as far as we know
	synced   time.Time
	maint    map[ipv6.HostPort]bool // operator maintenance (Maintenance)
	last     *topology.Snapshot     // last snapshot applied; nil after a Failover
	fence    time.Time              // snapshots taken before this predate the last Failover
	unknowns map[ipv6.HostPort]bool // servers without a slot, already reported
}

var _ router.Router = (*Router)(nil)

// NewRouter returns the router of the HAProxy generated from s, reached through c.
// log may be nil.
func NewRouter(name string, c *Client, s Settings, log *logrus.Entry) *Router {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	return &Router{
		name: name, client: c, layout: s.Layout(), rules: s.Rules, resync: DefaultResync,
		log:     log.WithFields(logrus.Fields{"router": name, "cluster": s.Cluster}),
		applied: map[Slot]AdminState{}, maint: map[ipv6.HostPort]bool{}, unknowns: map[ipv6.HostPort]bool{},
	}
}

// SetResync changes how often Reconcile re-reads the slot states (0 = every call).
func (r *Router) SetResync(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resync = d
}

// Name implements router.Router.
func (r *Router) Name() string { return r.name }

// Layout returns the backend names.
func (r *Router) Layout() Layout { return r.layout }

// Client returns the runtime API client.
func (r *Router) Client() *Client { return r.client }

// sync reads every slot of both backends. Call with mu held.
func (r *Router) sync(ctx context.Context) error {
	all, err := r.client.ShowServersState(ctx, "")
	if err != nil {
		r.known = nil
		return fmt.Errorf("%s: read slots: %w", r.name, err)
	}
	known := map[Slot]bool{}
	applied := map[Slot]AdminState{}
	backends := map[string]bool{}
	for _, s := range all {
		if s.Backend != r.layout.WriteBackend && s.Backend != r.layout.ReadBackend {
			continue
		}
		backends[s.Backend] = true
		sl := Slot{s.Backend, s.Name}
		known[sl] = true
		applied[sl] = s.Admin()
	}
	for _, b := range []string{r.layout.WriteBackend, r.layout.ReadBackend} {
		if !backends[b] {
			r.known = nil
			return fmt.Errorf("%s: backend %s has no server: is haproxy.cfg generated for this cluster?", r.name, b)
		}
	}
	r.known, r.applied, r.synced = known, applied, time.Now()
	return nil
}

// Bootstrap implements router.Router: it reads HAProxy's slots and applies the snapshot's
// routing intent in full (see Desired). A snapshot without a master changes nothing.
func (r *Router) Bootstrap(ctx context.Context, s *topology.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.sync(ctx); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if _, ok := s.MasterServer(); !ok {
		return nil
	}
	if err := r.apply(ctx, s); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// Reconcile implements router.Router. It costs nothing but a map comparison when the
// snapshot asks for what was applied last, and one "show servers state" every resync
// period. Snapshots taken before the last Failover are ignored: they still name the old
// master. A snapshot without a master changes nothing (router.Intent).
func (r *Router) Reconcile(ctx context.Context, s *topology.Snapshot) error {
	if _, ok := s.MasterServer(); !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fence.IsZero() && !s.Time.After(r.fence) {
		return nil
	}
	if r.known == nil || time.Since(r.synced) >= r.resync {
		if err := r.sync(ctx); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}
	if err := r.apply(ctx, s); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

// apply translates the snapshot's routing intent (router.IntentFor, with the operator's
// maintenance) and sends what differs from the applied states: slots leaving service
// first, sessions cut on the slots translate names. Call with mu held and the slots known.
func (r *Router) apply(ctx context.Context, s *topology.Snapshot) error {
	in := router.IntentFor(s, r.rules.IntentOptions(r.maint))
	want, cut := translate(in, r.layout)
	for sl := range want {
		if !r.known[sl] {
			delete(want, sl)
			if srv := findByName(s, sl.Server); srv != nil && !r.unknowns[srv.Addr] {
				r.unknowns[srv.Addr] = true
				r.log.WithField("server", srv.Addr.String()).Warn("server has no slot in haproxy.cfg: regenerate it and reload haproxy")
			}
		}
	}
	r.last = s
	changes := diff(want, r.applied)
	if len(changes) == 0 {
		return nil
	}
	var cmds []string
	for _, c := range changes {
		cmds = append(cmds, stateCommand(c.slot.String(), c.state))
		// An Offline server, or a write slot that is not the master's, keeps no session:
		// its clients reconnect elsewhere.
		if h, ok := r.applied[c.slot]; c.state == Maint && cut[c.slot] && ok && h != Maint {
			cmds = append(cmds, "shutdown sessions server "+c.slot.String())
		}
	}
	if err := r.client.Exec(ctx, cmds...); err != nil {
		r.known = nil // resync before trusting the cache again
		return fmt.Errorf("%s: %w", r.name, err)
	}
	reasons := map[string]string{}
	for _, si := range in.Servers {
		reasons[SlotName(si.Addr)] = string(si.Route) + ": " + si.Reason
	}
	for _, c := range changes {
		r.applied[c.slot] = c.state
		r.log.WithFields(logrus.Fields{"slot": c.slot.String(), "state": c.state, "intent": reasons[c.slot.Server]}).Info("haproxy slot changed")
	}
	return nil
}

func findByName(s *topology.Snapshot, name string) *topology.Server {
	for i := range s.Servers {
		if SlotName(s.Servers[i].Addr) == name {
			return &s.Servers[i]
		}
	}
	return nil
}

// Failover implements router.Router, in one runtime API connection: every write slot but
// the new master's goes to maintenance, the sessions still open to the old master are shut
// down (its clients reconnect, now to the new master), then the new master's write slot
// becomes ready, and its read slot follows router.IntentOptions.WriterTakesReads; the old
// master is offline (both slots in maintenance, sessions cut) until a snapshot shows it
// healthy.
// A slot leaving maintenance is up at once (HAProxy restarts its checks from "up").
func (r *Router) Failover(ctx context.Context, oldMaster, newMaster ipv6.HostPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		if err := r.sync(ctx); err != nil {
			return fmt.Errorf("failover to %s: %w", newMaster, err)
		}
	}
	w := r.layout.WriteBackend
	newSlot := Slot{w, SlotName(newMaster)}
	if !r.known[newSlot] {
		return fmt.Errorf("%s: failover to %s: no slot %s in haproxy.cfg: regenerate it", r.name, newMaster, newSlot)
	}
	oldSlot := Slot{w, SlotName(oldMaster)}
	oldRead := Slot{r.layout.ReadBackend, SlotName(oldMaster)}
	states := map[Slot]AdminState{}
	var cmds []string
	for sl := range r.known {
		if sl.Backend == w && sl != newSlot && (r.applied[sl] != Maint || sl == oldSlot) {
			cmds = append(cmds, stateCommand(sl.String(), Maint))
			states[sl] = Maint
		}
	}
	if r.known[oldSlot] && oldSlot != newSlot {
		cmds = append(cmds, "shutdown sessions server "+oldSlot.String())
	}
	if r.known[oldRead] && oldSlot != newSlot {
		// The old master is Offline until a snapshot shows it replicating: its read
		// sessions end too (ProxySQL's Failover moves its rows out of the pair).
		cmds = append(cmds, stateCommand(oldRead.String(), Maint))
		if h, ok := r.applied[oldRead]; ok && h != Maint {
			cmds = append(cmds, "shutdown sessions server "+oldRead.String())
		}
		states[oldRead] = Maint
	}
	cmds = append(cmds, stateCommand(newSlot.String(), Ready))
	states[newSlot] = Ready
	// The new master reads only per the read-on-master rule, counting the replicas left.
	newRead := Slot{r.layout.ReadBackend, SlotName(newMaster)}
	if r.known[newRead] {
		readers := 0
		for sl, st := range r.applied {
			if sl.Backend == r.layout.ReadBackend && st == Ready && sl != newRead && sl != oldRead {
				readers++
			}
		}
		rd := Maint
		if r.rules.IntentOptions(nil).WriterTakesReads(readers) {
			rd = Ready
		}
		if r.applied[newRead] != rd {
			cmds = append(cmds, stateCommand(newRead.String(), rd))
			states[newRead] = rd
		}
	}
	// From now on, a snapshot taken before this call is stale (it names the old master).
	r.fence = time.Now()
	r.last = nil
	if err := r.client.Exec(ctx, cmds...); err != nil {
		r.known = nil
		return fmt.Errorf("%s: failover from %s to %s: %w", r.name, oldMaster, newMaster, err)
	}
	for sl, st := range states {
		r.applied[sl] = st
	}
	r.log.WithFields(logrus.Fields{"old": oldMaster.String(), "new": newMaster.String()}).Info("haproxy writes moved")
	return nil
}

// Maintenance implements router.Router: on drains the server (router.Drained: no new
// connection, open sessions finish) and keeps it so whatever the snapshots say; off lets
// the last snapshot decide again.
func (r *Router) Maintenance(ctx context.Context, server ipv6.HostPort, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.maint[server] = true
	} else {
		delete(r.maint, server)
	}
	if r.known == nil {
		if err := r.sync(ctx); err != nil {
			return fmt.Errorf("maintenance %s: %w", server, err)
		}
	}
	if r.last != nil {
		if err := r.apply(ctx, r.last); err != nil {
			return fmt.Errorf("maintenance %s: %w", server, err)
		}
		return nil
	}
	if !on {
		return nil // the next snapshot puts it back
	}
	// No snapshot yet: drain what serves (a ready slot), leave the rest as it is.
	var cmds []string
	found := false
	states := map[Slot]AdminState{}
	for _, b := range []string{r.layout.WriteBackend, r.layout.ReadBackend} {
		sl := Slot{b, SlotName(server)}
		if !r.known[sl] {
			continue
		}
		found = true
		if r.applied[sl] == Ready {
			cmds = append(cmds, stateCommand(sl.String(), Drain))
			states[sl] = Drain
		}
	}
	if !found {
		return fmt.Errorf("%s: maintenance %s: no slot in haproxy.cfg", r.name, server)
	}
	if len(cmds) == 0 {
		return nil
	}
	if err := r.client.Exec(ctx, cmds...); err != nil {
		r.known = nil
		return fmt.Errorf("%s: maintenance %s: %w", r.name, server, err)
	}
	for sl, st := range states {
		r.applied[sl] = st
	}
	return nil
}

// Applied returns the slot states the router believes HAProxy runs (for tests and the API).
func (r *Router) Applied() map[Slot]AdminState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[Slot]AdminState, len(r.applied))
	for k, v := range r.applied {
		out[k] = v
	}
	return out
}
