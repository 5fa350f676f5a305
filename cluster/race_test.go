package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/topology"
)

// Races on real MariaDB: two topology changes asked at the same moment never interleave.
// One runs, the other waits for it or is refused, and the cluster ends with one writable
// master and every live server replicating from it.

// overlapWatch counts plans running at once from the monitor's typed observations.
type overlapWatch struct {
	mu       sync.Mutex
	running  int
	maxSeen  int
	started  []PlanKind
	finished []PlanKind
}

func (w *overlapWatch) observe(a ActionEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch a.Kind {
	case ObsPlanStarted:
		w.running++
		w.maxSeen = max(w.maxSeen, w.running)
		w.started = append(w.started, a.Plan)
	case ObsPlanDone:
		w.running--
		w.finished = append(w.finished, a.Plan)
	}
}

func (w *overlapWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.maxSeen > 1 {
		t.Fatalf("%d plans ran at once (started %v, finished %v)", w.maxSeen, w.started, w.finished)
	}
	if len(w.started) == 0 {
		t.Fatalf("no plan ran")
	}
}

// outcome accepts what the losing side of a race may get: success, a refusal or a busy
// error; anything else (a failed step) is reported.
func outcome(err error) string {
	var busy *BusyError
	switch {
	case err == nil:
		return "ran"
	case errors.As(err, &busy):
		return "busy"
	case errors.Is(err, ErrRefused):
		return "refused"
	}
	return "error: " + err.Error()
}

func waitHealthy(t *testing.T, c *testenv.Cluster, live []*testenv.Server, within time.Duration) *testenv.Server {
	t.Helper()
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var m *testenv.Server
		if m, err = healthy(c, live); err == nil {
			return m
		}
	}
	t.Fatalf("cluster not healthy after %s: %v", within, err)
	return nil
}

// An automatic failover (master killed) and an operator's switchover at the same moment.
func TestRaceAutomaticFailoverAndSwitchover(t *testing.T) {
	const rounds = 4
	for i := 0; i < rounds; i++ {
		func() {
			c := testenv.StartCluster(t, 3)
			defer c.Close()
			defer closeHandles(c)
			createWriterTable(t, c)
			acked := ackedRows(t, c, 1, 10)
			m, _ := failoverMonitor(t, c, nil)
			w := &overlapWatch{}
			m.SetObserver(w.observe)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); m.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })

			var wg sync.WaitGroup
			var swErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer scancel()
				_, _, swErr = m.Act(sctx, ActionRequest{Kind: PlanSwitchover, Origin: "api", Wait: OperatorWait})
			}()
			// Stagger the two by a few ms per round so each side wins some rounds.
			time.Sleep(time.Duration(i) * 4 * time.Millisecond)
			c.Master().Kill()
			wg.Wait()
			master := waitHealthy(t, c, c.Replicas(), 20*time.Second)
			w.check(t)
			if lost := missing(t, master, acked); len(lost) > 0 {
				t.Fatalf("round %d: %d acknowledged writes lost", i, len(lost))
			}
			t.Logf("round %d: switchover %s; plans started %v; master %s", i, outcome(swErr), w.started, master.Addr())
		}()
	}
}

// A bootstrap and a failover asked at the same moment on standalone servers.
func TestRaceBootstrapAndFailover(t *testing.T) {
	const rounds = 4
	for i := 0; i < rounds; i++ {
		func() {
			c := testenv.StartCluster(t, 3, testenv.Standalone())
			defer c.Close()
			defer closeHandles(c)
			m, _ := failoverMonitor(t, c, nil)
			w := &overlapWatch{}
			m.SetObserver(w.observe)
			runMonitor(t, m)
			waitFor(t, m, 5*time.Second, "standalone", func(s *topology.Snapshot) bool { return states(s) == "StandAlone,StandAlone,StandAlone" })
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for j, kind := range []PlanKind{PlanBootstrap, PlanFailover} {
				wg.Add(1)
				go func(j int, kind PlanKind) {
					defer wg.Done()
					if j == i%2 {
						time.Sleep(2 * time.Millisecond)
					}
					actx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					_, _, errs[j] = m.Act(actx, ActionRequest{Kind: kind, Origin: "api", Wait: OperatorWait})
				}(j, kind)
			}
			wg.Wait()
			if errs[0] != nil {
				t.Fatalf("round %d: bootstrap: %v", i, errs[0])
			}
			if o := outcome(errs[1]); o != "refused" && o != "busy" {
				t.Fatalf("round %d: failover beside a bootstrap: %s, want refused", i, o)
			}
			master := waitHealthy(t, c, c.Servers, 10*time.Second)
			w.check(t)
			t.Logf("round %d: bootstrap ran, failover %s; master %s", i, outcome(errs[1]), master.Addr())
		}()
	}
}
