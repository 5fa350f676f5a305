package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// HeartbeatConfig says whether and how a cluster's heartbeat is written
// (monitoring-write-heartbeat or test-inject-traffic, with
// monitoring-write-heartbeat-credential, else db-servers-credential).
type HeartbeatConfig struct {
	Interval       time.Duration // monitoring-ticker
	User, Password string
	Options        mariadb.Options
}

// HeartbeatLag is what the heartbeat tells of one replica.
type HeartbeatLag struct {
	// Lag is the time since the oldest heartbeat the replica has not applied yet (0 when it
	// shows the latest one); with the heartbeat's period as resolution.
	Lag time.Duration
	// Known is false when the replica's heartbeat is older than every one remembered: its
	// lag is at least Lag.
	Known bool
	// Progress is the last time the replica showed a heartbeat it had not shown before: a
	// replica that keeps progressing still receives the master's writes.
	Progress time.Time
}

// Heartbeat writes replication-manager's heartbeat on the master of a monitored cluster at
// each interval and reads it back on the replicas: mariadb.WriteHeartbeat's view, holding a
// new token each time. It never writes during a topology action, nor on a master that is
// read_only, so the heartbeat cannot become an errant transaction. Start it with
// StartHeartbeat; Stop ends its goroutine.
type Heartbeat struct {
	cfg  HeartbeatConfig
	snap func() *topology.Snapshot
	busy func() bool
	log  logrus.FieldLogger

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	written []written // oldest first, at most keepWritten
	lags    map[ipv6.HostPort]HeartbeatLag
	seen    map[ipv6.HostPort]string
	lastErr string
	servers map[ipv6.HostPort]*mariadb.Server
}

type written struct {
	token string
	at    time.Time
}

const keepWritten = 256

// StartHeartbeat starts writing the heartbeat of the cluster m monitors, while this
// manager leads the cluster and no action runs on it.
func StartHeartbeat(m *Monitor, cfg HeartbeatConfig, log logrus.FieldLogger) *Heartbeat {
	h := startHeartbeat(cfg, m.Snapshot, func() bool { return m.Busy() || !m.Leading() }, log)
	m.hb.Store(h)
	return h
}

// HeartbeatLag returns what the written heartbeat tells of a replica's lag (the original's
// replication-manager heartbeat table); ok is false when no heartbeat is written or the
// replica showed none yet. The API and the metrics show it beside Seconds_Behind_Master.
func (m *Monitor) HeartbeatLag(addr ipv6.HostPort) (HeartbeatLag, bool) {
	h := m.hb.Load()
	if h == nil {
		return HeartbeatLag{}, false
	}
	return h.Lag(addr)
}

func startHeartbeat(cfg HeartbeatConfig, snap func() *topology.Snapshot, busy func() bool, log logrus.FieldLogger) *Heartbeat {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Heartbeat{cfg: cfg, snap: snap, busy: busy, log: log, cancel: cancel, done: make(chan struct{}),
		lags: map[ipv6.HostPort]HeartbeatLag{}, seen: map[ipv6.HostPort]string{}, servers: map[ipv6.HostPort]*mariadb.Server{}}
	go h.run(ctx)
	return h
}

// Stop ends the heartbeat and closes its connections.
func (h *Heartbeat) Stop() {
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
}

// Lag returns what the heartbeat tells of a replica.
func (h *Heartbeat) Lag(addr ipv6.HostPort) (HeartbeatLag, bool) {
	if h == nil {
		return HeartbeatLag{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.lags[addr]
	return l, ok
}

// LastWritten returns the last heartbeat written and when ("" before the first).
func (h *Heartbeat) LastWritten() (string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.written) == 0 {
		return "", time.Time{}
	}
	w := h.written[len(h.written)-1]
	return w.token, w.at
}

func (h *Heartbeat) run(ctx context.Context) {
	defer close(h.done)
	defer func() {
		for _, s := range h.servers {
			s.Close()
		}
	}()
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		h.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Heartbeat) server(addr ipv6.HostPort) (*mariadb.Server, error) {
	if s, ok := h.servers[addr]; ok {
		return s, nil
	}
	s, err := mariadb.Open(addr, h.cfg.User, h.cfg.Password, h.cfg.Options)
	if err != nil {
		return nil, err
	}
	h.servers[addr] = s
	return s, nil
}

// beat writes one heartbeat on the master and reads every replica's.
func (h *Heartbeat) beat(ctx context.Context) {
	snap := h.snap()
	if snap == nil || (h.busy != nil && h.busy()) {
		return
	}
	master, ok := snap.MasterServer()
	if !ok || !master.Reachable || master.ReadOnly {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.Interval+h.cfg.Options.ConnectTimeout)
	defer cancel()
	var err error
	if s, e := h.server(master.Addr); e != nil {
		err = e
	} else {
		token := newHeartbeatToken()
		if err = s.WriteHeartbeat(cctx, token); err == nil {
			h.mu.Lock()
			h.written = append(h.written, written{token, time.Now()})
			if len(h.written) > keepWritten {
				h.written = h.written[len(h.written)-keepWritten:]
			}
			h.mu.Unlock()
		}
	}
	h.report(err)
	for i := range snap.Servers {
		r := &snap.Servers[i]
		if !r.Reachable || !r.IsReplica() {
			continue
		}
		s, err := h.server(r.Addr)
		if err != nil {
			continue
		}
		token, err := s.ReadHeartbeat(cctx)
		if err != nil || token == "" {
			continue
		}
		h.observe(r.Addr, token, time.Now())
	}
}

// report logs a write error once until it changes or the writes work again.
func (h *Heartbeat) report(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	h.mu.Lock()
	changed := msg != h.lastErr
	h.lastErr = msg
	h.mu.Unlock()
	switch {
	case changed && err != nil:
		h.log.WithError(err).Warn("heartbeat not written")
	case changed:
		h.log.Info("heartbeat written again")
	}
}

// observe records that a replica shows token at now.
func (h *Heartbeat) observe(addr ipv6.HostPort, token string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.lags[addr]
	if h.seen[addr] != token {
		h.seen[addr] = token
		l.Progress = now
	}
	l.Known = false
	for i := len(h.written) - 1; i >= 0; i-- {
		if h.written[i].token != token {
			continue
		}
		l.Known = true
		if i == len(h.written)-1 {
			l.Lag = 0
		} else {
			l.Lag = now.Sub(h.written[i+1].at)
		}
		break
	}
	if !l.Known && len(h.written) > 0 {
		l.Lag = now.Sub(h.written[0].at)
	}
	h.lags[addr] = l
}

func newHeartbeatToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
