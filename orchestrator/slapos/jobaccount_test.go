package slapos

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// fakeAccounts records the job accounts made, by server. (The real statements run on
// MariaDB in TestSlapOSReleaseDropIn.)
type fakeAccounts struct {
	mu    sync.Mutex
	made  map[ipv6.HostPort][]string // passwords, in order
	fail  map[ipv6.HostPort]error
	opens atomic.Int32
}

type fakeAccountServer struct {
	f    *fakeAccounts
	addr ipv6.HostPort
}

func (s fakeAccountServer) EnsureJobAccount(_ context.Context, user, host, password string, grants []string) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if err := s.f.fail[s.addr]; err != nil {
		return err
	}
	if user != configurator.JobUser || host != configurator.JobHost || len(grants) != len(configurator.JobGrants) {
		return errors.New("wrong account")
	}
	s.f.made[s.addr] = append(s.f.made[s.addr], password)
	return nil
}

func (s fakeAccountServer) Close() error { return nil }

func (f *fakeAccounts) count(a ipv6.HostPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.made[a])
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestJobAccountKeeper: the account is made once on each reachable server with the
// password anonymous bundles carry, again when a server comes back, never while an action
// runs; a failure is logged once, without the password, and retried.
func TestJobAccountKeeper(t *testing.T) {
	a := ipv6.HostPort{Host: "::1", Port: 3306}
	b := ipv6.HostPort{Host: "::1", Port: 3307}
	f := &fakeAccounts{made: map[ipv6.HostPort][]string{}, fail: map[ipv6.HostPort]error{b: errors.New("Access denied")}}
	var mu sync.Mutex
	snap := &topology.Snapshot{Servers: []topology.Server{{Addr: a, Reachable: true}, {Addr: b, Reachable: true}}}
	setReachable := func(i int, up bool) {
		mu.Lock()
		defer mu.Unlock()
		c := *snap
		c.Servers = append([]topology.Server(nil), snap.Servers...)
		c.Servers[i].Reachable = up
		snap = &c
	}
	var paused atomic.Bool
	paused.Store(true)
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := logrus.New()
	log.SetOutput(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }))
	work := t.TempDir()
	k := StartJobAccount(JobAccountConfig{
		Cluster: "cluster1", WorkDir: work, Interval: 10 * time.Millisecond, Retry: 50 * time.Millisecond,
		Snapshot: func() *topology.Snapshot { mu.Lock(); defer mu.Unlock(); return snap },
		Paused:   paused.Load,
		Open: func(addr ipv6.HostPort) (JobAccountServer, error) {
			f.opens.Add(1)
			return fakeAccountServer{f, addr}, nil
		},
		Log: log,
	})
	defer k.Stop()

	time.Sleep(60 * time.Millisecond)
	if n := f.opens.Load(); n != 0 {
		t.Fatalf("%d servers opened while an action runs", n)
	}
	paused.Store(false)
	waitFor(t, "the account on a", func() bool { return k.Ready(a) })
	key, err := LoadOrCreatePartitionKey(work)
	if err != nil {
		t.Fatal(err)
	}
	want := JobPassword(key, "cluster1")
	f.mu.Lock()
	got := f.made[a][0]
	f.mu.Unlock()
	if got != want {
		t.Fatalf("account made with another password than the bundles carry")
	}
	time.Sleep(100 * time.Millisecond)
	if n := f.count(a); n != 1 {
		t.Fatalf("account made %d times on a server that stayed up, want once", n)
	}
	// b failed several times (every Retry) but is logged once, without the password.
	logMu.Lock()
	text := logs.String()
	logMu.Unlock()
	if strings.Count(text, "job account not made") != 1 || !strings.Contains(text, "Access denied") || strings.Contains(text, want) {
		t.Fatalf("failure log:\n%s", text)
	}
	if k.Ready(b) {
		t.Fatal("b ready although its account failed")
	}
	f.mu.Lock()
	delete(f.fail, b)
	f.mu.Unlock()
	waitFor(t, "the account on b once it works", func() bool { return k.Ready(b) })

	// a goes away and comes back (maybe with a new data directory): made again.
	setReachable(0, false)
	waitFor(t, "a forgotten", func() bool { return !k.Ready(a) })
	setReachable(0, true)
	waitFor(t, "the account on a again", func() bool { return f.count(a) == 2 })
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
