package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/eventlog"
	"replication-manager-pro/topology"
)

// The live stream of one cluster: GET /api/clusters/{c}/stream, server-sent events
// (text/event-stream), authenticated like every protected route (Authorization: Bearer;
// the UI reads it with fetch, so the token never goes into a URL). It pushes what the UI
// would otherwise poll:
//
//	hello     {cluster, pollMs, heartbeatMs, lifeMs}: first, once
//	cluster   the cluster object (GET /api/clusters/{c}), when it changes
//	servers   topology/servers, when it changes
//	alerts    topology/alerts, when they change
//	events    the events added since the last ones sent (the first time: the last 50)
//	trend     the whole history (GET .../history) first, then only the new samples
//	plans     the plan timelines (GET .../plans), when one starts, steps or ends
//	clusters  [{name, ok}] of every cluster, for the navigation, when it changes
//	ping      {time} at least every heartbeat, so that the page knows the stream lives
//	bye       {reason}: the stream ends on purpose (renew, shutdown, cluster gone)
//
// Bounds: at most maxStreams streams at once per API server (503 beyond, with
// Retry-After); each lives streamLife, then says bye and the page reconnects (its token
// is checked again); a client that reads nothing for streamWriteWait is dropped. The
// server looks for changes every streamPoll: loads of atomic pointers and counters, no
// I/O; a change is encoded once per stream.
const (
	maxStreams      = 64
	streamPoll      = 250 * time.Millisecond
	streamHeartbeat = 5 * time.Second
	streamLife      = 10 * time.Minute
	streamWriteWait = 15 * time.Second
	streamFirstLogs = 50
)

// streamHub counts the open streams and ends them at shutdown.
type streamHub struct {
	mu   sync.Mutex
	open int
	stop chan struct{}
}

func (h *streamHub) stopped() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop == nil {
		h.stop = make(chan struct{})
	}
	return h.stop
}

func (h *streamHub) acquire() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open >= maxStreams {
		return false
	}
	h.open++
	return true
}

func (h *streamHub) release() {
	h.mu.Lock()
	h.open--
	h.mu.Unlock()
}

// shutdown ends every stream (Server.Shutdown): http.Server.Shutdown waits for running
// handlers, and a stream would never end by itself.
func (h *streamHub) shutdown() {
	ch := h.stopped()
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// streamer is the state of one stream: what it sent last.
type streamer struct {
	s    *Server
	name string
	buf  bytes.Buffer

	member     *cluster.Member
	snap       *topology.Snapshot // last looked at
	clusterOut []byte
	serversOut []byte
	alertsOut  []byte
	eventSeq   uint64
	eventsSent bool
	trendSeq   uint64
	trend      *cluster.TrendHistory
	plansVer   uint64
	plansSent  bool
	summary    []byte
	summaryAt  time.Time
	lastWrite  time.Time
}

func (st *streamer) event(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	st.raw(name, b)
}

func (st *streamer) raw(name string, b []byte) {
	// JSON holds no raw newline, so one data line carries it.
	st.buf.WriteString("event: ")
	st.buf.WriteString(name)
	st.buf.WriteString("\ndata: ")
	st.buf.Write(b)
	st.buf.WriteString("\n\n")
}

// collect appends to the buffer what changed since the last call; false when the cluster
// no longer runs.
func (st *streamer) collect(now time.Time) bool {
	m, ok := st.s.opt.Fleet.Get(st.name)
	if !ok {
		return false
	}
	st.member = m
	if snap := m.Monitor.Snapshot(); snap != nil && snap != st.snap {
		st.snap = snap
		if b, err := st.s.clusterJSON(m); err == nil && !bytes.Equal(b, st.clusterOut) {
			st.clusterOut = b
			st.raw("cluster", b)
		}
		out := make([]DBServer, 0, len(snap.Servers))
		for i := range snap.Servers {
			out = append(out, serverObject(m, &snap.Servers[i]))
		}
		if b, err := json.Marshal(out); err == nil && !bytes.Equal(b, st.serversOut) {
			st.serversOut = b
			st.raw("servers", b)
		}
		if b, err := json.Marshal(alertsOf(snap)); err == nil && !bytes.Equal(b, st.alertsOut) {
			st.alertsOut = b
			st.raw("alerts", b)
		}
	}
	if ev := st.s.opt.Events; ev != nil {
		if seq := ev.Seq(); seq != st.eventSeq || !st.eventsSent {
			var list []eventlog.Event
			if !st.eventsSent {
				list = ev.Since(st.name, 0, streamFirstLogs)
			} else {
				list = ev.Since(st.name, st.eventSeq, 0)
			}
			kept := list[:0]
			for _, e := range list {
				if e.Seq <= seq { // the next round sends the newer ones
					kept = append(kept, e)
				}
			}
			if len(kept) > 0 || !st.eventsSent {
				st.event("events", append([]eventlog.Event{}, kept...))
			}
			st.eventSeq, st.eventsSent = seq, true
		}
	}
	if h := m.Monitor.Trend(); h != st.trend {
		// A new history (first round, or a cluster recreated): send it whole.
		st.trend = h
		t, seq := h.Since(0)
		st.trendSeq = seq
		st.event("trend", trendJSON(t))
	} else if h.Seq() != st.trendSeq {
		t, seq := h.Since(st.trendSeq)
		st.trendSeq = seq
		st.event("trend-add", trendJSON(t))
	}
	if v := st.s.plans.changes(); v != st.plansVer || !st.plansSent {
		st.plansVer, st.plansSent = v, true
		st.event("plans", st.s.plans.list(st.name))
	}
	if now.Sub(st.summaryAt) >= time.Second {
		st.summaryAt = now
		type item struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		}
		var l []item
		for _, x := range st.s.opt.Fleet.Members() {
			sn := x.Monitor.Snapshot()
			l = append(l, item{Name: x.Name, OK: sn != nil && sn.IsFailable && !sn.IsDown})
		}
		if b, err := json.Marshal(l); err == nil && !bytes.Equal(b, st.summary) {
			st.summary = b
			st.raw("clusters", b)
		}
	}
	if st.buf.Len() == 0 && now.Sub(st.lastWrite) >= streamHeartbeat {
		st.event("ping", map[string]int64{"time": now.UnixMilli()})
	}
	return true
}

// flush writes the buffer, bounded by streamWriteWait.
func (st *streamer) flush(w http.ResponseWriter, ctl *http.ResponseController, now time.Time) error {
	if st.buf.Len() == 0 {
		return nil
	}
	ctl.SetWriteDeadline(now.Add(streamWriteWait))
	_, err := w.Write(st.buf.Bytes())
	st.buf.Reset()
	if err == nil {
		err = ctl.Flush()
	}
	st.lastWrite = now
	return err
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.streams.acquire() {
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("Too many live streams (%d): retry later", maxStreams), http.StatusServiceUnavailable)
		return
	}
	defer s.streams.release()
	ctl := http.NewResponseController(w)
	// A stream has no request body: the listeners' read timeout is lifted, so that the
	// connection's pending background read never fails while the stream lives.
	// A writer without deadlines (an in-process recorder) gets one batch: a stream that
	// could not be bounded is not held open.
	once := errors.Is(ctl.SetReadDeadline(time.Time{}), http.ErrNotSupported)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // reverse proxies must not buffer it
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	st := &streamer{s: s, name: rc.member.Name}
	ticker := rc.member.Monitor.Config().Ticker
	st.event("hello", map[string]any{"cluster": rc.member.Name, "pollMs": streamPoll.Milliseconds(),
		"heartbeatMs": streamHeartbeat.Milliseconds(), "lifeMs": streamLife.Milliseconds(), "tickerMs": ticker.Milliseconds()})
	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	life := time.NewTimer(streamLife)
	defer life.Stop()
	stop := s.streams.stopped()
	for {
		now := time.Now()
		if !st.collect(now) {
			st.event("bye", map[string]string{"reason": "cluster " + strconv.Quote(st.name) + " no longer runs"})
			st.flush(w, ctl, now)
			return
		}
		if st.flush(w, ctl, now) != nil || once {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-stop:
			st.event("bye", map[string]string{"reason": "shutdown"})
			st.flush(w, ctl, time.Now())
			return
		case <-life.C:
			st.event("bye", map[string]string{"reason": "renew"})
			st.flush(w, ctl, time.Now())
			return
		case <-poll.C:
		}
	}
}
