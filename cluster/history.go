package cluster

import (
	"math"
	"sync"
	"time"

	"replication-manager-pro/topology"
)

// The monitor's short history: a fixed ring of samples per cluster, in memory only, for
// the UI's charts (replication lag per replica, commits per second on the master, probe
// latency). It is bounded by construction:
//
//   - at most one sample per TrendSpacing (1 s): ticks closer than that are folded into
//     the pending sample, keeping the highest lag and latency they saw, so a spike is not
//     lost at a sub-second ticker;
//   - TrendCapacity (600) samples: 10 minutes at a ticker of 1 s or less, 20 minutes at
//     the default 2 s; the oldest sample is overwritten;
//   - each sample holds two float32 per configured server plus 16 bytes: about 60 KB per
//     cluster of 5 servers, 3 MB for 50 such clusters.
//
// A settings reload builds a new monitor; the fleet hands the history over
// (inheritTrend), so the charts survive it. A change of the server list starts a new
// history, since the columns no longer match.

const (
	// TrendCapacity is the number of samples kept per cluster.
	TrendCapacity = 600
	// TrendSpacing is the least time between two samples.
	TrendSpacing = time.Second
)

// TrendSample is one point of a cluster's history. Lag and Latency are indexed like
// Trend.Servers; NaN means unknown (no replication channel, Seconds_Behind_Master NULL,
// server unreachable).
type TrendSample struct {
	Time    time.Time
	Master  int     // index of the master in Trend.Servers, -1 when none is known
	Commits float32 // transactions per second written to the master's binary log; NaN unknown
	Lag     []float32
	Latency []float32 // probe duration in milliseconds
}

// Trend is a copy of a cluster's history, oldest sample first.
type Trend struct {
	Servers  []string // "host:port", in configured order
	Capacity int
	Spacing  time.Duration
	Samples  []TrendSample
}

// TrendHistory is the ring of one cluster. Safe for concurrent use.
type TrendHistory struct {
	mu      sync.Mutex
	servers []string
	ring    []TrendSample
	next    int
	pending *TrendSample // folds the ticks of the current spacing interval
	// The master's GTID sequence total at the last committed sample, to compute commits
	// per second; reset when the master changes.
	baseMaster string
	baseSeq    uint64
	baseTime   time.Time
	baseOK     bool
	// seq counts committed samples: readers ask for what is new since a count.
	seq uint64
}

// NewTrendHistory returns an empty history.
func NewTrendHistory() *TrendHistory { return &TrendHistory{} }

// Record folds one snapshot into the history. Pure apart from the ring: the snapshot is
// not kept.
func (h *TrendHistory) Record(s *topology.Snapshot) {
	if s == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !sameServers(h.servers, s) {
		h.servers = make([]string, len(s.Servers))
		for i := range s.Servers {
			h.servers[i] = s.Servers[i].Addr.String()
		}
		h.ring, h.next, h.pending, h.baseOK = nil, 0, nil, false
	}
	n := len(s.Servers)
	cur := TrendSample{Time: s.Time, Master: s.Master, Commits: nan32, Lag: make([]float32, n), Latency: make([]float32, n)}
	if cur.Time.IsZero() {
		cur.Time = time.Now()
	}
	for i := range s.Servers {
		srv := &s.Servers[i]
		cur.Lag[i], cur.Latency[i] = nan32, nan32
		if srv.Reachable {
			cur.Latency[i] = float32(srv.ProbeLatency.Seconds() * 1000)
			if r, ok := srv.PrimaryReplication(); ok && r.Lag != nil {
				cur.Lag[i] = float32(*r.Lag)
			}
		}
	}
	if p := h.pending; p != nil && len(p.Lag) == n {
		// Keep the worst of the interval.
		for i := 0; i < n; i++ {
			cur.Lag[i] = maxKnown(cur.Lag[i], p.Lag[i])
			cur.Latency[i] = maxKnown(cur.Latency[i], p.Latency[i])
		}
		if cur.Master < 0 {
			cur.Master = p.Master
		}
	}
	last := h.lastLocked()
	if last != nil && cur.Time.Sub(last.Time) < TrendSpacing {
		h.pending = &cur
		return
	}
	h.pending = nil
	cur.Commits = h.commitsLocked(s, cur.Time)
	h.pushLocked(cur)
}

// commitsLocked computes the master's commits per second since the last committed
// sample, from the sum of its binary log GTID sequence numbers over every domain: each
// transaction written to the binary log takes the next number of its domain.
func (h *TrendHistory) commitsLocked(s *topology.Snapshot, at time.Time) float32 {
	m, ok := s.MasterServer()
	if !ok || !m.Reachable || len(m.BinlogPos) == 0 {
		h.baseOK = false
		return nan32
	}
	var seq uint64
	for _, g := range m.BinlogPos {
		seq += g.Seq
	}
	addr := m.Addr.String()
	out := nan32
	if h.baseOK && h.baseMaster == addr && seq >= h.baseSeq {
		if dt := at.Sub(h.baseTime).Seconds(); dt > 0 {
			out = float32(float64(seq-h.baseSeq) / dt)
		}
	}
	h.baseMaster, h.baseSeq, h.baseTime, h.baseOK = addr, seq, at, true
	return out
}

func (h *TrendHistory) lastLocked() *TrendSample {
	if len(h.ring) == 0 {
		return nil
	}
	i := h.next - 1
	if i < 0 {
		i = len(h.ring) - 1
	}
	return &h.ring[i]
}

func (h *TrendHistory) pushLocked(x TrendSample) {
	h.seq++
	if len(h.ring) < TrendCapacity {
		h.ring = append(h.ring, x)
		h.next = len(h.ring) % TrendCapacity
		return
	}
	h.ring[h.next] = x
	h.next = (h.next + 1) % TrendCapacity
}

// Snapshot returns a copy of the history, oldest first. Samples are shared values whose
// slices are never modified after they are committed.
func (h *TrendHistory) Snapshot() Trend {
	t, _ := h.Since(0)
	return t
}

// Since returns the samples committed after the count after (0: all kept), and the
// current count. A reader that fell behind by more than the capacity gets what is kept.
func (h *TrendHistory) Since(after uint64) (Trend, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := Trend{Servers: append([]string(nil), h.servers...), Capacity: TrendCapacity, Spacing: TrendSpacing}
	n := len(h.ring)
	want := n
	if after < h.seq && h.seq-after < uint64(n) {
		want = int(h.seq - after)
	} else if after >= h.seq {
		want = 0
	}
	t.Samples = make([]TrendSample, 0, want)
	start := 0
	if len(h.ring) == TrendCapacity {
		start = h.next
	}
	for k := n - want; k < n; k++ {
		t.Samples = append(t.Samples, h.ring[(start+k)%n])
	}
	return t, h.seq
}

// Seq is the number of samples committed so far (cheap: readers poll it).
func (h *TrendHistory) Seq() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

func sameServers(have []string, s *topology.Snapshot) bool {
	if len(have) != len(s.Servers) {
		return false
	}
	for i := range have {
		if have[i] != s.Servers[i].Addr.String() {
			return false
		}
	}
	return true
}

var nan32 = float32(math.NaN())

func maxKnown(a, b float32) float32 {
	switch {
	case a != a: // NaN
		return b
	case b != b:
		return a
	case b > a:
		return b
	}
	return a
}

// Trend returns the cluster's recent history (see TrendHistory).
func (m *Monitor) Trend() *TrendHistory {
	if h := m.trend.Load(); h != nil {
		return h
	}
	m.trend.CompareAndSwap(nil, NewTrendHistory())
	return m.trend.Load()
}

// recordTrend adds the tick's snapshot to the history.
func (m *Monitor) recordTrend(s *topology.Snapshot) { m.Trend().Record(s) }

// inheritTrend makes m keep the history of the monitor it replaces (a settings reload).
func (m *Monitor) inheritTrend(old *Monitor) {
	if old != nil && old != m {
		m.trend.Store(old.Trend())
	}
}
