package api

import (
	"math"
	"net/http"
	"strconv"

	"replication-manager-pro/cluster"
)

// TrendJSON is a cluster's short history (cluster.TrendHistory) as the API answers it:
// GET /api/clusters/{c}/history, and the live stream's trend events.
type TrendJSON struct {
	Servers   []string     `json:"servers"` // host:port, the columns of lag and latencyMs
	Capacity  int          `json:"capacity"`
	SpacingMs int64        `json:"spacingMs"`
	Samples   []TrendPoint `json:"samples"` // oldest first
}

// TrendPoint is one sample; null is unknown.
type TrendPoint struct {
	T         int64  `json:"t"`      // unix milliseconds
	Master    int    `json:"master"` // index in servers, -1 when none
	Commits   jnum   `json:"commits"`
	Lag       []jnum `json:"lag"`       // seconds behind the source
	LatencyMs []jnum `json:"latencyMs"` // probe duration
}

// jnum is a number that encodes NaN as null.
type jnum float32

func (n jnum) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(f*1000)/1000, 'f', -1, 64), nil
}

func trendJSON(t cluster.Trend) TrendJSON {
	out := TrendJSON{Servers: t.Servers, Capacity: t.Capacity, SpacingMs: t.Spacing.Milliseconds(), Samples: make([]TrendPoint, len(t.Samples))}
	if out.Servers == nil {
		out.Servers = []string{}
	}
	for i, s := range t.Samples {
		p := TrendPoint{T: s.Time.UnixMilli(), Master: s.Master, Commits: jnum(s.Commits),
			Lag: make([]jnum, len(s.Lag)), LatencyMs: make([]jnum, len(s.Latency))}
		for j, v := range s.Lag {
			p.Lag[j] = jnum(v)
		}
		for j, v := range s.Latency {
			p.LatencyMs[j] = jnum(v)
		}
		out.Samples[i] = p
	}
	return out
}

// handleHistory answers GET /api/clusters/{c}/history: the monitor's recent samples.
func (s *Server) handleHistory(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, trendJSON(rc.member.Monitor.Trend().Snapshot()))
}
