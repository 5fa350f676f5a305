package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
)

// Factory builds the monitor of one configured cluster (with its routers); the returned
// function releases what the monitor does not own (router connections).
type Factory func(c *config.Cluster) (*Monitor, func(), error)

// Fleet runs one monitor per cluster and owns their goroutines: clusters can be added,
// reloaded with new settings and stopped while the daemon runs (the API's actions/add and
// settings reload). Safe for concurrent use.
type Fleet struct {
	ctx     context.Context
	factory Factory
	log     *logrus.Logger

	mu      sync.RWMutex
	members map[string]*Member // by lower-case name

	obsMu     sync.RWMutex
	observers []func(ActionEvent)
}

// Observe adds a function that receives the typed observations of every cluster's action
// path (plans started and done, steps, refusals, resumes), present and future members.
func (f *Fleet) Observe(fn func(ActionEvent)) {
	f.obsMu.Lock()
	f.observers = append(f.observers, fn)
	f.obsMu.Unlock()
}

func (f *Fleet) fanout(a ActionEvent) {
	f.obsMu.RLock()
	defer f.obsMu.RUnlock()
	for _, fn := range f.observers {
		fn(a)
	}
}

// Member is one running cluster.
type Member struct {
	Name    string
	Config  config.Cluster
	Monitor *Monitor

	cancel  context.CancelFunc
	done    chan struct{}
	release func()
}

// NewFleet prepares a fleet whose monitors run until ctx is done.
func NewFleet(ctx context.Context, factory Factory, log *logrus.Logger) *Fleet {
	if log == nil {
		log = logrus.StandardLogger()
	}
	return &Fleet{ctx: ctx, factory: factory, log: log, members: map[string]*Member{}}
}

// Start builds and runs the monitor of a cluster. A cluster of that name must not run yet.
func (f *Fleet) Start(c config.Cluster) error {
	key := strings.ToLower(c.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.members[key]; ok {
		return fmt.Errorf("cluster %s already runs", c.Name)
	}
	mem, err := f.start(c)
	if err != nil {
		return err
	}
	f.members[key] = mem
	return nil
}

func (f *Fleet) start(c config.Cluster) (*Member, error) {
	m, release, err := f.factory(&c)
	if err != nil {
		return nil, err
	}
	if release == nil {
		release = func() {}
	}
	m.SetObserver(f.fanout)
	ctx, cancel := context.WithCancel(f.ctx)
	mem := &Member{Name: c.Name, Config: c, Monitor: m, cancel: cancel, done: make(chan struct{}), release: release}
	go func() {
		defer close(mem.done)
		defer release()
		m.Run(ctx)
	}()
	f.log.WithField("cluster", c.Name).Info("monitoring started")
	return mem, nil
}

// Reload replaces a cluster's monitor by one built from new settings (or starts it when it
// did not run). The new monitor is built before the old one stops, so a bad configuration
// leaves the old one running.
func (f *Fleet) Reload(c config.Cluster) error {
	key := strings.ToLower(c.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.members[key]
	mem, err := f.start(c)
	if err != nil {
		return err
	}
	if old != nil {
		mem.Monitor.inheritTrend(old.Monitor) // the charts' history survives the reload
		old.stop()
	}
	f.members[key] = mem
	f.log.WithField("cluster", c.Name).Info("settings reloaded")
	return nil
}

// Stop stops a cluster's monitor and forgets it.
func (f *Fleet) Stop(name string) bool {
	key := strings.ToLower(name)
	f.mu.Lock()
	mem, ok := f.members[key]
	delete(f.members, key)
	f.mu.Unlock()
	if ok {
		mem.stop()
	}
	return ok
}

func (m *Member) stop() {
	m.cancel()
	<-m.done
}

// Get returns a running cluster by name (case-insensitive).
func (f *Fleet) Get(name string) (*Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.members[strings.ToLower(name)]
	return m, ok
}

// Members returns the running clusters sorted by name.
func (f *Fleet) Members() []*Member {
	f.mu.RLock()
	out := make([]*Member, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, m)
	}
	f.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// StopAll stops every monitor and waits for them.
func (f *Fleet) StopAll() {
	f.mu.Lock()
	members := f.members
	f.members = map[string]*Member{}
	f.mu.Unlock()
	for _, m := range members {
		m.stop()
	}
}
