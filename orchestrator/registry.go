package orchestrator

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// Deps are what the daemon hands a Factory.
type Deps struct {
	Log logrus.FieldLogger // never nil when built by New
}

// Factory builds an orchestrator.
type Factory func(Deps) (Orchestrator, error)

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
// an error listing the known ones; a backend package that was not linked into the binary
// is unknown.
func Lookup(name string) (Factory, error) {
	regMu.RLock()
	f, ok := factories[strings.ToLower(strings.TrimSpace(name))]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("prov-orchestrator %q: unknown orchestrator; known: %s", name, strings.Join(Names(), ", "))
	}
	return f, nil
}

// New looks name up and builds the orchestrator.
func New(name string, d Deps) (Orchestrator, error) {
	f, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = logrus.StandardLogger()
	}
	o, err := f(d)
	if err != nil {
		return nil, fmt.Errorf("prov-orchestrator %s: %w", name, err)
	}
	return o, nil
}
