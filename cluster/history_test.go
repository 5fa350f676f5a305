package cluster

import (
	"math"
	"testing"
	"time"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

func trendSnap(at time.Time, masterSeq uint64, lag *int64, latency time.Duration) *topology.Snapshot {
	m := topology.Server{Addr: ipv6.HostPort{Host: "127.0.0.1", Port: 3301}, Reachable: true, ProbeLatency: latency,
		BinlogPos: gtid.List{{Domain: 0, ServerID: 1, Seq: masterSeq}}}
	r := topology.Server{Addr: ipv6.HostPort{Host: "127.0.0.1", Port: 3302}, Reachable: true, ProbeLatency: latency,
		Replications: []topology.Replication{{Source: m.Addr, Lag: lag}}}
	return &topology.Snapshot{Time: at, Master: 0, Servers: []topology.Server{m, r}}
}

func i64(v int64) *int64 { return &v }

func TestTrendHistoryFoldsTicksAndComputesCommits(t *testing.T) {
	h := NewTrendHistory()
	t0 := time.Unix(1000, 0)
	h.Record(trendSnap(t0, 100, i64(0), 2*time.Millisecond))
	// Two ticks within the spacing: folded, the worst lag and latency kept.
	h.Record(trendSnap(t0.Add(300*time.Millisecond), 130, i64(7), 9*time.Millisecond))
	h.Record(trendSnap(t0.Add(600*time.Millisecond), 140, i64(1), 3*time.Millisecond))
	h.Record(trendSnap(t0.Add(2*time.Second), 300, nil, 4*time.Millisecond))
	tr := h.Snapshot()
	if len(tr.Samples) != 2 || len(tr.Servers) != 2 || tr.Servers[1] != "127.0.0.1:3302" {
		t.Fatalf("trend %+v", tr)
	}
	first, second := tr.Samples[0], tr.Samples[1]
	if !math.IsNaN(float64(first.Commits)) {
		t.Errorf("first sample has no baseline, commits %v", first.Commits)
	}
	if second.Commits != 100 { // (300-100) transactions in 2 s
		t.Errorf("commits/s %v, want 100", second.Commits)
	}
	if second.Lag[1] != 7 || second.Latency[1] != 9 {
		t.Errorf("folded sample lag %v latency %v, want the interval's worst 7 and 9", second.Lag[1], second.Latency[1])
	}
	if !math.IsNaN(float64(second.Lag[0])) {
		t.Errorf("the master has no lag, got %v", second.Lag[0])
	}
	if _, seq := h.Since(0); seq != 2 {
		t.Errorf("seq %d", seq)
	}
	if got, _ := h.Since(1); len(got.Samples) != 1 || got.Samples[0].Commits != 100 {
		t.Errorf("since 1: %+v", got.Samples)
	}
}

func TestTrendHistoryIsBounded(t *testing.T) {
	h := NewTrendHistory()
	t0 := time.Unix(1000, 0)
	for i := 0; i < TrendCapacity+50; i++ {
		h.Record(trendSnap(t0.Add(time.Duration(i)*time.Second), uint64(i), i64(int64(i)), time.Millisecond))
	}
	tr := h.Snapshot()
	if len(tr.Samples) != TrendCapacity {
		t.Fatalf("%d samples kept, want %d", len(tr.Samples), TrendCapacity)
	}
	if tr.Samples[0].Lag[1] != 50 || tr.Samples[TrendCapacity-1].Lag[1] != float32(TrendCapacity+49) {
		t.Errorf("oldest %v newest %v: not in order", tr.Samples[0].Lag[1], tr.Samples[TrendCapacity-1].Lag[1])
	}
	for i := 1; i < len(tr.Samples); i++ {
		if !tr.Samples[i].Time.After(tr.Samples[i-1].Time) {
			t.Fatalf("sample %d out of order", i)
		}
	}
	if got, _ := h.Since(uint64(TrendCapacity + 45)); len(got.Samples) != 5 {
		t.Errorf("since: %d samples, want 5", len(got.Samples))
	}
	// A change of the server list starts again.
	s := trendSnap(t0.Add(time.Hour), 1, nil, time.Millisecond)
	s.Servers = s.Servers[:1]
	h.Record(s)
	if tr := h.Snapshot(); len(tr.Samples) != 1 || len(tr.Servers) != 1 {
		t.Errorf("after a new server list: %d samples, %v", len(tr.Samples), tr.Servers)
	}
}

func TestTrendCommitsResetOnNewMaster(t *testing.T) {
	h := NewTrendHistory()
	t0 := time.Unix(1000, 0)
	h.Record(trendSnap(t0, 100, nil, time.Millisecond))
	s := trendSnap(t0.Add(time.Second), 150, nil, time.Millisecond)
	s.Master = 1 // another master: no rate across masters
	s.Servers[1].BinlogPos = gtid.List{{Domain: 0, ServerID: 2, Seq: 500}}
	h.Record(s)
	tr := h.Snapshot()
	if c := tr.Samples[1].Commits; !math.IsNaN(float64(c)) {
		t.Errorf("commits across a master change: %v", c)
	}
}
