package orchestrator

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
)

// Deps are what the daemon hands a Factory besides the cluster's configuration.
type Deps struct {
	Log logrus.FieldLogger // never nil when built by New
	// Previous is the instance of the same cluster that the new one replaces on a settings
	// reload, nil on the first build. A backend owning live state (the local orchestrator's
	// child processes) takes it over; the caller stops using Previous once New returns.
	Previous Orchestrator
}

// Factory validates one cluster's configuration and builds that cluster's orchestrator.
// Its errors name the configuration key at fault ("slapos-db-partitions: ...").
type Factory func(c *config.Cluster, d Deps) (Orchestrator, error)

// ErrUnknownOrchestrator is returned (wrapped) for a prov-orchestrator value no linked
// backend registered (configuration accepts opensvc and kube, not implemented yet).
var ErrUnknownOrchestrator = errors.New("unknown orchestrator")

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a factory available under a prov-orchestrator name. Packages call it from
// init; registering a name twice or a nil factory panics, as database/sql does.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if f == nil {
		panic("orchestrator: Register of a nil factory for " + name)
	}
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" {
		panic("orchestrator: Register with an empty name")
	}
	if _, dup := factories[key]; dup {
		panic("orchestrator: Register called twice for " + key)
	}
	factories[key] = f
}

// Names returns the registered names, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the factory registered under name (case-insensitive). An unknown name is
// an error wrapping ErrUnknownOrchestrator and listing the known ones; a backend package that
// was not linked into the binary is unknown.
func Lookup(name string) (Factory, error) {
	regMu.RLock()
	f, ok := factories[strings.ToLower(strings.TrimSpace(name))]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("prov-orchestrator %q: %w; known: %s", name, ErrUnknownOrchestrator, strings.Join(Names(), ", "))
	}
	return f, nil
}

// New builds the orchestrator of one cluster: the factory registered under the cluster's
// prov-orchestrator, given the cluster's configuration. Call it once per cluster (and again
// on a settings reload, with Deps.Previous), never per operation. Errors name the cluster
// and the orchestrator.
func New(c *config.Cluster, d Deps) (Orchestrator, error) {
	name := c.Settings.ProvOrchestrator
	f, err := Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if d.Log == nil {
		d.Log = logrus.StandardLogger()
	}
	o, err := f(c, d)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: prov-orchestrator %s: %w", c.Name, name, err)
	}
	return o, nil
}
