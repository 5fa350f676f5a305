package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lead is this manager's part in one cluster's leadership. It implements
// cluster.Leadership: the cluster's leader key holds the leading manager's name and address,
// bound to its lease; this manager leads while the key it created is there and its lease
// is surely alive.
type Lead struct {
	c       *Coordinator
	cluster string
	busy    func() bool

	mu        sync.Mutex
	rev       int64 // create revision of the leader key this manager put; 0 when not leading
	lease     clientv3.LeaseID
	leader    ManagerInfo // the leader seen last
	freeSince time.Time   // when the key was first seen absent (for managers not preferred)
	actionSeq int64
}

func (l *Lead) leaderKey() string { return l.c.key("clusters", l.cluster, "leader") }

// Leading reports whether this manager leads the cluster now: it holds the leader key, and
// its lease is surely alive (see Coordinator.alive).
func (l *Lead) Leading() bool {
	lease, ok := l.c.alive()
	l.mu.Lock()
	defer l.mu.Unlock()
	return ok && l.rev != 0 && l.lease == lease
}

// Leader names the manager that leads the cluster, as seen last ("" when none).
func (l *Lead) Leader() (string, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader.Name, l.leader.Addr
}

// ErrNotLeader is what Guard and the store answer a manager that does not lead.
var ErrNotLeader = errors.New("not the cluster's leader (lost the leadership, or etcd unreachable)")

// Guard checks in etcd that this manager still holds the cluster's leader key, and records
// what it is about to do under <prefix>/clusters/<cluster>/actions/ with its name, in one
// transaction: a manager that lost its lease or its link to etcd fails here, before the
// step. The records expire a day later.
func (l *Lead) Guard(ctx context.Context, what string) error {
	if !l.Leading() {
		return ErrNotLeader
	}
	l.mu.Lock()
	rev := l.rev
	l.actionSeq++
	seq := l.actionSeq
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.c.cfg.TTL/2)
	defer cancel()
	rec, _ := json.Marshal(ActionRecord{Manager: l.c.cfg.Name, What: what, Time: time.Now()})
	key := l.c.key("clusters", l.cluster, "actions", fmt.Sprintf("%020d-%s-%d", time.Now().UnixNano(), l.c.cfg.Name, seq))
	opts := []clientv3.OpOption{}
	if lease, err := l.c.recordLease(ctx); err == nil {
		opts = append(opts, clientv3.WithLease(lease))
	}
	resp, err := l.c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(l.leaderKey()), "=", rev)).
		Then(clientv3.OpPut(key, string(rec), opts...)).Commit()
	if err != nil {
		return fmt.Errorf("leadership check in etcd: %w", err)
	}
	if !resp.Succeeded {
		l.lost("the leader key changed")
		return ErrNotLeader
	}
	return nil
}

// ActionRecord is one guarded step, as kept in etcd.
type ActionRecord struct {
	Manager string    `json:"manager"`
	What    string    `json:"what"`
	Time    time.Time `json:"time"`
}

// recordLease returns a lease of a day for the action records (granted once per manager).
func (c *Coordinator) recordLease(ctx context.Context) (clientv3.LeaseID, error) {
	c.mu.Lock()
	if c.recLease != 0 && time.Since(c.recLeaseAt) < 12*time.Hour {
		id := c.recLease
		c.mu.Unlock()
		return id, nil
	}
	c.mu.Unlock()
	g, err := c.cli.Grant(ctx, int64((24 * time.Hour).Seconds()))
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.recLease, c.recLeaseAt = g.ID, time.Now()
	c.mu.Unlock()
	return g.ID, nil
}

func (l *Lead) lost(why string) {
	l.mu.Lock()
	was := l.rev != 0
	l.rev, l.lease = 0, 0
	l.mu.Unlock()
	if was {
		l.c.changes.Add(1)
		l.c.log.WithField("cluster", l.cluster).Warn("leadership lost: " + why)
	}
}

// settle runs on each refresh: notice a lost leadership, hand the cluster over to the
// manager it belongs to (when that one is alive and no action runs), or take it when free.
func (l *Lead) settle(ctx context.Context, ms []ManagerInfo) {
	resp, err := l.c.cli.Get(ctx, l.leaderKey())
	if err != nil {
		return
	}
	lease, alive := l.c.alive()
	want := preferred(ms, l.cluster)
	l.mu.Lock()
	rev := l.rev
	if len(resp.Kvs) == 1 {
		var li ManagerInfo
		if json.Unmarshal(resp.Kvs[0].Value, &li) == nil {
			l.leader = li
		}
		l.freeSince = time.Time{}
	} else {
		l.leader = ManagerInfo{}
		if l.freeSince.IsZero() {
			l.freeSince = time.Now()
		}
	}
	freeFor := time.Since(l.freeSince)
	l.mu.Unlock()

	me := l.c.cfg.Name
	switch {
	case rev != 0 && (len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != rev):
		l.lost("the leader key is gone (lease expired)")
	case rev != 0 && want != me && want != "" && (l.busy == nil || !l.busy()):
		// The cluster belongs to another live manager (one that joined): hand it over.
		if l.release(ctx) {
			l.c.log.WithFields(map[string]any{"cluster": l.cluster, "to": want}).Info("leadership handed over")
		}
	case rev == 0 && len(resp.Kvs) == 0 && alive:
		// Free: its manager takes it at once; the others after a TTL, in case it died.
		if want == me || freeFor >= l.c.cfg.TTL || !contains(ms, want) {
			l.acquire(ctx, lease)
		}
	}
}

func contains(ms []ManagerInfo, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// acquire puts the leader key if it is absent, bound to this manager's lease.
func (l *Lead) acquire(ctx context.Context, lease clientv3.LeaseID) bool {
	info, _ := json.Marshal(ManagerInfo{Name: l.c.cfg.Name, Addr: l.c.cfg.Addr, Since: time.Now()})
	resp, err := l.c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(l.leaderKey()), "=", 0)).
		Then(clientv3.OpPut(l.leaderKey(), string(info), clientv3.WithLease(lease))).Commit()
	if err != nil || !resp.Succeeded {
		return false
	}
	l.mu.Lock()
	l.rev, l.lease = resp.Header.Revision, lease
	l.leader = ManagerInfo{Name: l.c.cfg.Name, Addr: l.c.cfg.Addr}
	l.mu.Unlock()
	l.c.changes.Add(1)
	l.c.log.WithField("cluster", l.cluster).Info("leadership taken")
	return true
}

// release deletes the leader key if this manager still holds it.
func (l *Lead) release(ctx context.Context) bool {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev == 0 {
		return false
	}
	resp, err := l.c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(l.leaderKey()), "=", rev)).
		Then(clientv3.OpDelete(l.leaderKey())).Commit()
	l.lost("handed over")
	return err == nil && resp.Succeeded
}

// Store returns the cluster's shared state store (cluster.StateStore): documents under
// <prefix>/clusters/<cluster>/state/, written only by the leader (a transaction on the
// leader key, like Guard).
func (l *Lead) Store() *Store { return &Store{l: l} }

// Store keeps a cluster's state documents in etcd.
type Store struct{ l *Lead }

func (s *Store) key(name string) string { return s.l.c.key("clusters", s.l.cluster, "state", name) }

// Get reads a document.
func (s *Store) Get(ctx context.Context, name string) ([]byte, bool, error) {
	resp, err := s.l.c.cli.Get(ctx, s.key(name))
	if err != nil {
		return nil, false, err
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// Put writes a document, if this manager leads the cluster.
func (s *Store) Put(ctx context.Context, name string, b []byte) error {
	return s.txn(ctx, clientv3.OpPut(s.key(name), string(b)))
}

// Delete removes a document, if this manager leads the cluster.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.txn(ctx, clientv3.OpDelete(s.key(name)))
}

func (s *Store) txn(ctx context.Context, op clientv3.Op) error {
	s.l.mu.Lock()
	rev := s.l.rev
	s.l.mu.Unlock()
	if rev == 0 {
		return ErrNotLeader
	}
	resp, err := s.l.c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.l.leaderKey()), "=", rev)).Then(op).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return ErrNotLeader
	}
	return nil
}
