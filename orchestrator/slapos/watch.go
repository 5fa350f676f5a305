package slapos

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/orchestrator"
)

// ActionWatch is the long-poll route of the native partition agent (`replication-manager-pro
// slapos agent`): GET /api/clusters/{c}/servers/{host}/{port}/watch?wait=<seconds>. It
// answers as soon as the manager wants something of the node, or after wait seconds with no
// action, so that an agent reacts within a second instead of the minute of SlapOS' cron
// scripts, with one request open per agent instead of eight polls a minute.
const ActionWatch = "watch"

// Agent actions a watch answer hands over, in the order an agent must run them.
const (
	WatchConfigChange = "config-change" // download and install the bundle again (cookie_config)
	WatchStop         = "stop"          // stop the service and leave it stopped (cookie_waitstop)
	WatchRestart      = "restart"       // stop then start the service (cookie_restart)
	WatchStart        = "start"         // start the service (cookie_waitstart)
)

// Watch limits: an agent asks for up to MaxWatchWait; the answer comes at the latest then,
// well within the API's write timeout and any reverse proxy's idle timeout.
const (
	DefaultWatchWait = 25 * time.Second
	MaxWatchWait     = 55 * time.Second
	// watchPoll catches cookies another process set (the in-process ones wake the watchers
	// at once, see cookieChanged).
	watchPoll = 200 * time.Millisecond
)

// WatchAnswer is the JSON body of a watch answer (200). Actions are handed over once: a
// second watcher of the same node, or the legacy need-* route, does not see them again.
type WatchAnswer struct {
	Cluster string `json:"cluster"`
	Server  string `json:"server"` // the node's address as the manager names it
	Kind    string `json:"kind"`   // "database", "proxysql", "haproxy"
	// Actions to run now, in order (WatchConfigChange, WatchStop, WatchRestart, WatchStart).
	Actions []string `json:"actions"`
	// Cookies still set for the node after the hand-over (cookie_prov, ...): informative.
	Cookies []string `json:"cookies"`
	// Running is whether the manager sees the node running (its last snapshot).
	Running bool `json:"running"`
}

// watchCookies maps the cookies a watch hands over to their action, in answer order. A
// stop is only handed over while the node runs, as need-stop does.
var watchCookies = []struct {
	cookie  Cookie
	action  string
	needsUp bool
}{
	{CookieConfig, WatchConfigChange, false},
	{CookieWaitStop, WatchStop, true},
	{CookieRestart, WatchRestart, false},
	{CookieWaitStart, WatchStart, false},
}

// cookieChanged wakes the watchers when a cookie is set in this process.
var cookieChanged = newBroadcast()

type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// wait returns a channel closed at the next notify.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// watchWait reads ?wait= (seconds, may be fractional): default DefaultWatchWait, 0 answers
// at once, capped at MaxWatchWait.
func watchWait(r *http.Request) (time.Duration, bool) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return DefaultWatchWait, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f != f {
		return 0, false
	}
	d := time.Duration(f * float64(time.Second))
	if d > MaxWatchWait || f > MaxWatchWait.Seconds() {
		d = MaxWatchWait
	}
	return d, true
}

// watch serves ActionWatch for node t of cluster name, the caller holding the node's
// credential. It takes the one-shot cookies when there are any and answers them; else it
// waits for a cookie to be set (woken at once by this process, and checking every 200 ms
// for other writers) until ?wait= seconds have passed. The cluster is looked up again on
// each check, so a settings reload or a new snapshot is seen. When the answer cannot be
// written (the agent went away), the cookies it took are set again.
func (h *Handlers) watch(w http.ResponseWriter, r *http.Request, name string, t orchestrator.Target) {
	wait, ok := watchWait(r)
	if !ok {
		write(w, http.StatusBadRequest, "400 -wait: want a number of seconds >= 0")
		return
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for {
		woken := cookieChanged.wait()
		c, ok := h.Clusters.Cluster(name)
		if !ok || c.Orchestrator == nil || c.Config == nil {
			write(w, http.StatusInternalServerError, bodyNoCluster)
			return
		}
		n, err := c.Orchestrator.Node(t.Addr)
		if err != nil {
			h.fail(w, c, t, err)
			return
		}
		if r.Context().Err() != nil {
			return // the agent went away: take nothing
		}
		running := h.running(c, t)
		var taken []Cookie
		ans := WatchAnswer{Cluster: c.Orchestrator.Cluster(), Server: t.Addr.String(), Kind: string(t.Kind),
			Actions: []string{}, Running: running}
		for _, wc := range watchCookies {
			if wc.needsUp && !running {
				continue
			}
			got, err := n.Take(wc.cookie)
			if err != nil {
				h.putBack(n, taken)
				h.fail(w, c, t, err)
				return
			}
			if got {
				taken = append(taken, wc.cookie)
				ans.Actions = append(ans.Actions, wc.action)
			}
		}
		if len(taken) == 0 {
			select {
			case <-woken:
				continue
			case <-tick.C:
				continue
			case <-deadline.C: // nothing to do: an answer without actions
			case <-r.Context().Done():
				return
			}
		}
		left, _ := n.Cookies()
		ans.Cookies = make([]string, 0, len(left))
		for _, ck := range left {
			ans.Cookies = append(ans.Cookies, string(ck))
		}
		body, _ := json.Marshal(ans)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, werr := w.Write(append(body, '\n'))
		if werr == nil {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		if len(taken) > 0 {
			if werr != nil || r.Context().Err() != nil {
				h.putBack(n, taken)
				return
			}
			h.log().WithFields(logrus.Fields{"cluster": ans.Cluster, "server": ans.Server, "actions": ans.Actions}).
				Info("slapos: actions handed to the partition agent")
		}
		return
	}
}

// putBack sets cookies again that a watch took but could not hand over.
func (h *Handlers) putBack(n Node, taken []Cookie) {
	for _, ck := range taken {
		if err := n.Set(ck); err != nil {
			h.log().WithError(err).WithField("cookie", string(ck)).Error("slapos: cookie not handed over and not set again")
		}
	}
}
