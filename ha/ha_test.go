package ha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/internal/testenv"
)

// Leadership on a real 3-member etcd cluster (Debian's etcd-server) on loopback.

func start(t *testing.T, e *testenv.Etcd, name string) *Coordinator {
	t.Helper()
	c, err := startCoordinator(e, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startCoordinator(e *testenv.Etcd, name string) (*Coordinator, error) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return Start(context.Background(), Config{Endpoints: strings.Split(e.Endpoints(), ","), Prefix: "/rmp-test",
		TTL: 2 * time.Second, Name: name, Addr: "https://" + name + ":10005", Log: logrus.NewEntry(log)})
}

// leaders returns, per cluster, the managers that say they lead it.
func leaders(cs []*Coordinator, clusters []string) map[string][]string {
	out := map[string][]string{}
	for _, cl := range clusters {
		for _, c := range cs {
			if c != nil && c.Lead(cl, nil).Leading() {
				out[cl] = append(out[cl], c.Name())
			}
		}
	}
	return out
}

func waitLeaders(t *testing.T, cs []*Coordinator, clusters []string, ok func(map[string][]string) bool, what string) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := leaders(cs, clusters)
		if ok(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: leaders %v", what, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func oneEach(clusters []string) func(map[string][]string) bool {
	return func(l map[string][]string) bool {
		for _, cl := range clusters {
			if len(l[cl]) != 1 {
				return false
			}
		}
		return true
	}
}

func TestLeadershipSpreadsAndMovesWithManagers(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	clusters := []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}
	a := start(t, e, "mgr-a")
	defer a.Close()
	for _, cl := range clusters {
		a.Lead(cl, nil)
	}
	l := waitLeaders(t, []*Coordinator{a}, clusters, oneEach(clusters), "a alone leads all")
	t.Logf("alone: %v", l)

	b := start(t, e, "mgr-b")
	for _, cl := range clusters {
		b.Lead(cl, nil)
	}
	both := []*Coordinator{a, b}
	want := map[string]string{}
	for _, cl := range clusters {
		want[cl] = preferred([]ManagerInfo{{Name: "mgr-a"}, {Name: "mgr-b"}}, cl)
	}
	l = waitLeaders(t, both, clusters, func(l map[string][]string) bool {
		for _, cl := range clusters {
			if len(l[cl]) != 1 || l[cl][0] != want[cl] {
				return false
			}
		}
		return true
	}, "clusters spread over a and b")
	n := 0
	for _, cl := range clusters {
		if l[cl][0] == "mgr-b" {
			n++
		}
	}
	if n == 0 || n == len(clusters) {
		t.Fatalf("no spread: %v", l)
	}
	ms, err := a.Managers(context.Background())
	if err != nil || len(ms) != 2 {
		t.Fatalf("managers %+v %v", ms, err)
	}
	for _, m := range ms {
		if len(m.Leads) == 0 || m.LeaseRemaining <= 0 {
			t.Errorf("manager status %+v", m)
		}
	}

	// b leaves cleanly: its clusters come back to a at once, not after a lease.
	b.Close()
	start := time.Now()
	waitLeaders(t, []*Coordinator{a}, clusters, oneEach(clusters), "a takes b's clusters back")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hand-over after a clean leave took %v", d)
	}
}

func TestGuardRecordsStepsAndRefusesAStandby(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	a := start(t, e, "mgr-a")
	defer a.Close()
	b := start(t, e, "mgr-b")
	defer b.Close()
	la, lb := a.Lead("c1", nil), b.Lead("c1", nil)
	waitLeaders(t, []*Coordinator{a, b}, []string{"c1"}, oneEach([]string{"c1"}), "one leader")
	leader, standby := la, lb
	if lb.Leading() {
		leader, standby = lb, la
	}
	ctx := context.Background()
	if err := leader.Guard(ctx, "failover step 1/3 promote db2"); err != nil {
		t.Fatalf("leader's guard: %v", err)
	}
	if err := standby.Guard(ctx, "failover step 1/3 promote db2"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("standby's guard: %v", err)
	}
	if err := standby.Store().Put(ctx, "failover-history.json", []byte("{}")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("standby wrote the shared state: %v", err)
	}
	if err := leader.Store().Put(ctx, "failover-history.json", []byte(`{"count":1}`)); err != nil {
		t.Fatal(err)
	}
	if b, ok, err := standby.Store().Get(ctx, "failover-history.json"); err != nil || !ok || string(b) != `{"count":1}` {
		t.Fatalf("standby reads %q %v %v", b, ok, err)
	}
	recs, err := Actions(ctx, a, "c1")
	if err != nil || len(recs) != 1 || !strings.Contains(recs[0].What, "promote db2") {
		t.Fatalf("action records %+v %v", recs, err)
	}
	// The standby names the leader (for refusals) from its next look at etcd.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		name, addr := standby.Leader()
		if name == recs[0].Manager && addr == "https://"+name+":10005" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby sees leader %q %q, the record says %q", name, addr, recs[0].Manager)
		}
	}
}

func TestKilledManagerIsReplacedAndQuorumLossStopsEveryone(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	a := start(t, e, "mgr-a")
	b := start(t, e, "mgr-b")
	defer b.Close()
	cs := []*Coordinator{a, b}
	for _, c := range cs {
		c.Lead("c1", nil)
	}
	l := waitLeaders(t, cs, []string{"c1"}, oneEach([]string{"c1"}), "one leader")
	dead, live := a, b
	if l["c1"][0] == "mgr-b" {
		dead, live = b, a
	}
	// The leader dies without a word (kill -9): the other waits out its lease only.
	dead.crash()
	killed := time.Now()
	waitLeaders(t, []*Coordinator{live}, []string{"c1"}, oneEach([]string{"c1"}), "standby takes over")
	took := time.Since(killed)
	t.Logf("standby leading %v after the leader died (TTL 2 s)", took)
	if took < time.Second {
		t.Errorf("standby led %v after the kill: before the dead leader's lease could expire", took)
	}

	// Quorum lost: nobody leads, nothing is guarded through.
	e.Members[1].Kill()
	e.Members[2].Kill()
	deadline := time.Now().Add(5 * time.Second)
	for live.Lead("c1", nil).Leading() {
		if time.Now().After(deadline) {
			t.Fatal("still leading without an etcd quorum")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lost := time.Since(deadline.Add(-5 * time.Second))
	t.Logf("stopped leading %v after the quorum was lost", lost)
	if err := live.Lead("c1", nil).Guard(context.Background(), "x"); err == nil {
		t.Fatal("guard passed without quorum")
	}
	e.Restart(1)
	e.Restart(2)
	waitLeaders(t, []*Coordinator{live}, []string{"c1"}, oneEach([]string{"c1"}), "leading again once etcd answers")
}

func TestPreferredIsStableAndSpread(t *testing.T) {
	ms := []ManagerInfo{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	count := map[string]int{}
	for i := 0; i < 300; i++ {
		cl := fmt.Sprintf("cluster%d", i)
		p := preferred(ms, cl)
		count[p]++
		// Removing a manager moves only its clusters.
		if p != "c" && preferred(ms[:2], cl) != p {
			t.Fatalf("%s moved from %s when c left", cl, p)
		}
	}
	for _, m := range ms {
		if count[m.Name] < 60 {
			t.Fatalf("uneven spread %v", count)
		}
	}
}
