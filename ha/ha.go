// Package ha lets several managers share clusters through etcd, one leader per cluster: a
// lease per manager, a leader key per cluster bound to it, every plan step guarded by an
// etcd transaction on that key, and the clusters' shared state (failover history, plan
// journal) kept in etcd. With no etcd configured a manager works alone and this package is
// not used.
package ha

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Config is what a manager needs to join the others.
type Config struct {
	Endpoints []string
	Prefix    string        // etcd-prefix, e.g. "/replication-manager-pro"
	TTL       time.Duration // etcd-lease-ttl
	Name      string        // this manager's name, unique among the managers
	Addr      string        // its API address, shown to the others and in refusals
	Username  string
	Password  string
	TLS       *tls.Config
	Log       *logrus.Entry
}

// ManagerInfo is one manager as registered in etcd.
type ManagerInfo struct {
	Name  string    `json:"name"`
	Addr  string    `json:"addr"`
	Since time.Time `json:"since"`
	lease clientv3.LeaseID
}

// Coordinator is this manager's membership: its lease, the list of managers, and its
// leadership of each cluster. One per process; Close hands every cluster over.
type Coordinator struct {
	cfg Config
	cli *clientv3.Client
	log *logrus.Entry

	mu         sync.Mutex
	lease      clientv3.LeaseID // 0 while there is none (etcd unreachable)
	lastAlive  time.Time        // last keepalive answer: the lease is alive at least until then + TTL
	managers   []ManagerInfo
	leads      map[string]*Lead
	started    time.Time
	recLease   clientv3.LeaseID // the day-long lease of the action records
	recLeaseAt time.Time

	changes atomic.Int64 // leadership gained or lost, for metrics

	cancel context.CancelFunc
	done   chan struct{}
	// kaCtx ends the keepalive goroutines (kaWG) when the Coordinator stops.
	kaCtx    context.Context
	kaCancel context.CancelFunc
	kaWG     sync.WaitGroup
}

// Start connects to etcd, registers this manager under a lease and starts the loop that
// keeps the lease alive and takes or hands over clusters. It fails when etcd cannot be
// reached at all within the TTL (a manager must not run alone believing it leads).
func Start(ctx context.Context, cfg Config) (*Coordinator, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("ha: no etcd endpoints")
	}
	if cfg.TTL < 2*time.Second {
		cfg.TTL = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	cfg.Prefix = strings.TrimRight(cfg.Prefix, "/")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.TTL / 2, TLS: cfg.TLS,
		Username: cfg.Username, Password: cfg.Password, Logger: zap.NewNop(),
		DialKeepAliveTime: cfg.TTL / 2, DialKeepAliveTimeout: cfg.TTL / 4,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd-endpoints: %w", err)
	}
	c := &Coordinator{cfg: cfg, cli: cli, log: cfg.Log.WithField("manager", cfg.Name), leads: map[string]*Lead{}, started: time.Now(), done: make(chan struct{})}
	c.kaCtx, c.kaCancel = context.WithCancel(context.Background())
	sctx, cancel := context.WithTimeout(ctx, cfg.TTL)
	err = c.register(sctx)
	cancel()
	if err != nil {
		c.kaCancel()
		cli.Close()
		return nil, fmt.Errorf("etcd-endpoints %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	c.cancel = lcancel
	go c.loop(lctx)
	return c, nil
}

func (c *Coordinator) key(parts ...string) string {
	return c.cfg.Prefix + "/" + strings.Join(parts, "/")
}

// register grants a lease, puts this manager's key on it and starts keeping it alive.
func (c *Coordinator) register(ctx context.Context) error {
	g, err := c.cli.Grant(ctx, int64((c.cfg.TTL+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	info, _ := json.Marshal(ManagerInfo{Name: c.cfg.Name, Addr: c.cfg.Addr, Since: c.started})
	if _, err := c.cli.Put(ctx, c.key("managers", c.cfg.Name), string(info), clientv3.WithLease(g.ID)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	c.mu.Lock()
	c.lease, c.lastAlive = g.ID, time.Now()
	c.mu.Unlock()
	c.kaWG.Add(1)
	go c.keepAlive(g.ID)
	return nil
}

// keepAlive renews the lease every TTL/6, each renewal bounded by TTL/3. lastAlive is when
// the last successful renewal was sent: etcd renewed the lease after that, so it is alive
// for the others at least until then + TTL. Renewing six times per TTL leaves room for slow
// answers on a loaded machine before alive (TTL/2) says no. Owned by the Coordinator: ends
// when the lease is gone or the Coordinator stops.
func (c *Coordinator) keepAlive(id clientv3.LeaseID) {
	defer c.kaWG.Done()
	t := time.NewTicker(c.cfg.TTL / 6)
	defer t.Stop()
	for {
		select {
		case <-c.kaCtx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(c.kaCtx, c.cfg.TTL/3)
		resp, err := c.cli.KeepAliveOnce(ctx, id)
		cancel()
		c.mu.Lock()
		if c.lease != id {
			c.mu.Unlock()
			return
		}
		switch {
		case err == nil && resp.TTL > 0:
			c.lastAlive = sent
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			c.lease = 0 // expired: every leadership bound to it is gone
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// alive reports whether this manager's lease is surely alive for the others: the last
// keepalive answer is less than half a TTL old. A manager cut off from etcd stops acting
// at TTL/2, before its lease (and its leaderships) can expire for the others at TTL.
func (c *Coordinator) alive() (clientv3.LeaseID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease, c.lease != 0 && time.Since(c.lastAlive) < c.cfg.TTL/2
}

// Lead returns this manager's leadership of a cluster, created on first use. busy reports
// a running action: leadership is not handed over in the middle of one.
func (c *Coordinator) Lead(cluster string, busy func() bool) *Lead {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leads[cluster]; ok {
		return l
	}
	l := &Lead{c: c, cluster: cluster, busy: busy}
	c.leads[cluster] = l
	return l
}

// Forget stops taking part in a cluster's leadership (the cluster was removed), handing it
// over if this manager led it.
func (c *Coordinator) Forget(cluster string) {
	c.mu.Lock()
	l := c.leads[cluster]
	delete(c.leads, cluster)
	c.mu.Unlock()
	if l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.TTL/2)
		l.release(ctx)
		cancel()
	}
}

// Changes counts leaderships gained and lost since start (a Prometheus counter).
func (c *Coordinator) Changes() int64 { return c.changes.Load() }

// Name returns this manager's name.
func (c *Coordinator) Name() string { return c.cfg.Name }

// Close hands every cluster over at once (the others need not wait for the lease to
// expire), revokes the lease and closes the etcd client.
func (c *Coordinator) Close() {
	c.cancel()
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.TTL/2)
	defer cancel()
	c.mu.Lock()
	var leads []*Lead
	for _, l := range c.leads {
		leads = append(leads, l)
	}
	lease := c.lease
	c.lease = 0
	c.mu.Unlock()
	for _, l := range leads {
		l.release(ctx)
	}
	c.kaCancel()
	c.kaWG.Wait()
	if lease != 0 {
		c.cli.Revoke(ctx, lease)
	}
	c.cli.Close()
}

// loop keeps the membership: a new lease when the old one was lost, and every TTL/4 the
// managers list and each cluster's leadership.
func (c *Coordinator) loop(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(c.cfg.TTL / 4)
	defer tick.Stop()
	// A leader key deleted (its manager's lease expired, or it handed the cluster over) or
	// a manager registered: settle at once rather than at the next tick.
	wake := make(chan struct{}, 1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	watched := make(chan struct{})
	go func() { // owned by loop: ends with wctx
		defer close(watched)
		for wr := range c.cli.Watch(wctx, c.cfg.Prefix+"/", clientv3.WithPrefix()) {
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if (ev.Type == clientv3.EventTypeDelete && strings.HasSuffix(k, "/leader")) || strings.HasPrefix(k, c.key("managers")+"/") {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	defer func() { wcancel(); <-watched }()
	wasAlive := true
	for {
		_, ok := c.alive()
		if ok != wasAlive {
			if ok {
				c.log.Info("etcd reached again: taking part in leadership")
			} else {
				c.log.Warn("etcd unreachable or without quorum: not acting on any cluster until it answers")
			}
			wasAlive = ok
		}
		c.mu.Lock()
		lease := c.lease
		c.mu.Unlock()
		if lease == 0 {
			rctx, cancel := context.WithTimeout(ctx, c.cfg.TTL/2)
			if err := c.register(rctx); err != nil && ctx.Err() == nil {
				c.log.WithError(err).Debug("etcd: not registered yet")
			}
			cancel()
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.TTL/2)
		c.refresh(rctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// refresh reads the managers and settles each cluster's leadership.
func (c *Coordinator) refresh(ctx context.Context) {
	resp, err := c.cli.Get(ctx, c.key("managers")+"/", clientv3.WithPrefix())
	if err != nil {
		return
	}
	var ms []ManagerInfo
	for _, kv := range resp.Kvs {
		var m ManagerInfo
		if json.Unmarshal(kv.Value, &m) == nil && m.Name != "" {
			m.lease = clientv3.LeaseID(kv.Lease)
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	c.mu.Lock()
	c.managers = ms
	var leads []*Lead
	for _, l := range c.leads {
		leads = append(leads, l)
	}
	c.mu.Unlock()
	for _, l := range leads {
		l.settle(ctx, ms)
	}
}

// preferred picks the manager a cluster should be led by, by rendezvous hashing: each
// cluster goes to the live manager with the highest hash of (manager, cluster), so clusters
// spread over the managers and only the clusters of a manager that comes or goes move.
func preferred(ms []ManagerInfo, cluster string) string {
	best, bestH := "", uint64(0)
	for _, m := range ms {
		sum := sha256.Sum256([]byte(m.Name + "\x00" + cluster))
		if v := binary.BigEndian.Uint64(sum[:8]); best == "" || v > bestH {
			best, bestH = m.Name, v
		}
	}
	return best
}

// Preferred names the manager, among names, that a cluster belongs to (rendezvous hashing,
// as the managers decide it), for tests and tools.
func Preferred(names []string, cluster string) string {
	ms := make([]ManagerInfo, len(names))
	for i, n := range names {
		ms[i].Name = n
	}
	return preferred(ms, cluster)
}

// Managers returns the managers registered in etcd, with the clusters each leads and how
// long its lease has left.
func (c *Coordinator) Managers(ctx context.Context) ([]ManagerStatus, error) {
	c.mu.Lock()
	ms := append([]ManagerInfo(nil), c.managers...)
	var clusters []string
	for name := range c.leads {
		clusters = append(clusters, name)
	}
	c.mu.Unlock()
	sort.Strings(clusters)
	out := make([]ManagerStatus, 0, len(ms))
	index := map[string]int{}
	for _, m := range ms {
		st := ManagerStatus{Name: m.Name, Addr: m.Addr, Since: m.Since, Self: m.Name == c.cfg.Name}
		if ttl, err := c.cli.TimeToLive(ctx, m.lease); err == nil && ttl.TTL > 0 {
			st.LeaseRemaining = time.Duration(ttl.TTL) * time.Second
		}
		index[m.Name] = len(out)
		out = append(out, st)
	}
	for _, cl := range clusters {
		resp, err := c.cli.Get(ctx, c.key("clusters", cl, "leader"))
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 1 {
			var li ManagerInfo
			if json.Unmarshal(resp.Kvs[0].Value, &li) == nil {
				if i, ok := index[li.Name]; ok {
					out[i].Leads = append(out[i].Leads, cl)
				}
			}
		}
	}
	return out, nil
}

// ManagerStatus is one manager in the status the API shows.
type ManagerStatus struct {
	Name           string        `json:"name"`
	Addr           string        `json:"addr"`
	Since          time.Time     `json:"since"`
	Self           bool          `json:"self"`
	Leads          []string      `json:"leads"`
	LeaseRemaining time.Duration `json:"leaseRemainingNs"`
}

// crash stops this manager as kill -9 would, for tests: no hand-over, no revoke; the
// others wait for its lease to expire.
func (c *Coordinator) crash() {
	c.cancel()
	<-c.done
	c.mu.Lock()
	c.lease = 0
	c.mu.Unlock()
	c.kaCancel()
	c.kaWG.Wait()
	c.cli.Close()
}

// Actions returns the guarded steps recorded for a cluster, oldest first.
func Actions(ctx context.Context, c *Coordinator, cluster string) ([]ActionRecord, error) {
	resp, err := c.cli.Get(ctx, c.key("clusters", cluster, "actions")+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	out := make([]ActionRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r ActionRecord
		if json.Unmarshal(kv.Value, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
