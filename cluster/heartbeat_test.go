package cluster

import (
	"testing"
	"time"

	"replication-manager-pro/ipv6"
)

// A replica's lag is the time since the first heartbeat it has not applied, zero when it
// shows the latest; one older than every remembered heartbeat is a lower bound.
func TestHeartbeatLagFromTokens(t *testing.T) {
	h := &Heartbeat{lags: map[ipv6.HostPort]HeartbeatLag{}, seen: map[ipv6.HostPort]string{}}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, tok := range []string{"a", "b", "c"} {
		h.written = append(h.written, written{tok, t0.Add(time.Duration(i) * time.Second)})
	}
	r := ipv6.HostPort{Host: "::1", Port: 3306}
	h.observe(r, "c", t0.Add(2500*time.Millisecond))
	if l, _ := h.Lag(r); l.Lag != 0 || !l.Known || !l.Progress.Equal(t0.Add(2500*time.Millisecond)) {
		t.Errorf("up to date: %+v", l)
	}
	h.observe(r, "a", t0.Add(5*time.Second))
	if l, _ := h.Lag(r); l.Lag != 4*time.Second || !l.Known {
		t.Errorf("behind by b and c: %+v (want 4s since b)", l)
	}
	h.observe(r, "a", t0.Add(6*time.Second))
	if l, _ := h.Lag(r); !l.Progress.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("no progress: %+v", l)
	}
	h.observe(r, "zz", t0.Add(7*time.Second))
	if l, _ := h.Lag(r); l.Known || l.Lag != 7*time.Second {
		t.Errorf("unknown token: %+v", l)
	}
	if _, ok := h.Lag(ipv6.HostPort{Host: "::2", Port: 1}); ok {
		t.Error("lag of a server never observed")
	}
}
