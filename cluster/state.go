package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// StateStore keeps a cluster's shared state documents: the failover history and the
// journal of the plan in progress. A lone manager keeps them as files under its state
// directory (FileStore); managers sharing clusters through etcd keep them there (package
// ha), so that a new leader finds what the old one left.
type StateStore interface {
	// Get returns a document; ok is false when there is none.
	Get(ctx context.Context, name string) (b []byte, ok bool, err error)
	// Put writes a document whole. A store shared by managers refuses it from a manager
	// that no longer leads the cluster.
	Put(ctx context.Context, name string, b []byte) error
	// Delete removes a document (no error when there is none).
	Delete(ctx context.Context, name string) error
}

// Names of the state documents.
const (
	docJournal = "plan-journal.json"
	docHistory = "failover-history.json"
)

// FileStore keeps documents as files in <dir>/<cluster>/, written through a temporary file
// and a rename so that a reader sees one whole document. They are not fsynced: they
// protect against the manager dying, not the machine.
type FileStore struct{ Dir string }

// NewFileStore returns the store of a cluster under a state directory; nil when there is
// no directory (nothing is kept).
func NewFileStore(stateDir, cluster string) StateStore {
	if stateDir == "" {
		return nil
	}
	return FileStore{Dir: filepath.Join(stateDir, cluster)}
}

func (f FileStore) Get(_ context.Context, name string) ([]byte, bool, error) {
	b, err := os.ReadFile(filepath.Join(f.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func (f FileStore) Put(_ context.Context, name string, b []byte) error {
	if err := os.MkdirAll(f.Dir, 0o750); err != nil {
		return err
	}
	path := filepath.Join(f.Dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (f FileStore) Delete(_ context.Context, name string) error {
	if err := os.Remove(filepath.Join(f.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Leadership tells a monitor whether it may act on its cluster. A lone manager always may
// (nil Leadership); managers sharing clusters elect one leader per cluster (package ha).
type Leadership interface {
	// Leading reports whether this manager leads the cluster now.
	Leading() bool
	// Leader names the manager that leads the cluster and its API address ("" when none).
	Leader() (name, addr string)
	// Guard checks, in the shared store, that this manager still leads the cluster and
	// records what it is about to do; an error means it must not do it.
	Guard(ctx context.Context, what string) error
}

// NotLeaderError refuses an action asked of a manager that does not lead the cluster.
type NotLeaderError struct {
	Cluster    string
	Leader     string // the leading manager's name, "" when none leads now
	LeaderAddr string // its API address
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return fmt.Sprintf("this manager does not lead cluster %s and no manager leads it now: retry shortly", e.Cluster)
	}
	return fmt.Sprintf("this manager does not lead cluster %s: ask its leader %s (%s)", e.Cluster, e.Leader, e.LeaderAddr)
}
