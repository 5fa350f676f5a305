package cluster

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// fakeLead is a Leadership whose guard passes a number of times, then refuses.
type fakeLead struct {
	leading bool
	passes  int
	guarded []string
}

func (f *fakeLead) Leading() bool            { return f.leading }
func (f *fakeLead) Leader() (string, string) { return "mgr-b", "https://b:10005" }
func (f *fakeLead) Guard(_ context.Context, what string) error {
	if f.passes == 0 {
		return errors.New("not the cluster's leader")
	}
	f.passes--
	f.guarded = append(f.guarded, what)
	return nil
}

func TestStandbyRefusesActionsNamingTheLeader(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	m := NewMonitor(MonitorConfig{Cluster: "c1", Hosts: []ipv6.HostPort{addr("db1")}}, nil, nil, log)
	m.SetShared(&fakeLead{leading: false}, NewFileStore(t.TempDir(), "c1"))
	_, _, err := m.Act(context.Background(), ActionRequest{Kind: PlanSwitchover, Origin: "api"})
	var nl *NotLeaderError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &nl) || nl.Leader != "mgr-b" || !strings.Contains(err.Error(), "https://b:10005") {
		t.Fatalf("standby's answer: %v", err)
	}
	if m.Leading() {
		t.Fatal("a standby says it leads")
	}
}

func TestLostLeadershipStopsThePlanAndKeepsItJournaled(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	store := NewFileStore(t.TempDir(), "c1")
	x := NewExecutor(ExecConfig{Cluster: "c1"}, func(ipv6.HostPort) (*mariadb.Server, error) { return nil, errors.New("no server") },
		nil, func(ActionEvent) {}, logrus.NewEntry(log))
	x.Journal = NewJournal(store)
	lead := &fakeLead{leading: true, passes: 1}
	x.Guard = lead.Guard
	p := Plan{Kind: PlanFailover, Cluster: "c1", Steps: []Step{
		{Kind: StepPreScript, Detail: "/bin/true"},
		{Kind: StepPostScript, Detail: "/bin/true"},
		{Kind: StepRecordCrash},
	}}
	res := x.Run(context.Background(), p)
	if !res.Stopped || !strings.Contains(res.Err, "stopped before step 2") || len(res.Steps) != 1 {
		t.Fatalf("result %+v", res)
	}
	if len(lead.guarded) != 1 || !strings.Contains(lead.guarded[0], "failover step 1/3 pre-script") {
		t.Fatalf("guarded %v", lead.guarded)
	}
	rec, ok, err := NewJournal(store).Load()
	if err != nil || !ok || len(rec.Done) != 1 || rec.Plan.Kind != PlanFailover {
		t.Fatalf("journal after the stop: %+v %v %v (the next leader must find the plan)", rec, ok, err)
	}
}

func TestFailoverCancelsARunningReseed(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	m := NewMonitor(MonitorConfig{Cluster: "c1", Hosts: []ipv6.HostPort{addr("db1")}}, nil, nil, log)
	release, busy := m.tryAcquire(ActionRequest{Kind: PlanReseed, Origin: "monitor"})
	if busy != nil {
		t.Fatal(busy)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.setRunningCancel(cancel)
	go func() { <-ctx.Done(); time.Sleep(50 * time.Millisecond); release() }() // the reseed unwinds

	// Another operator action still waits its turn, and is refused at once with Wait 0.
	if _, err := m.acquire(context.Background(), ActionRequest{Kind: PlanSwitchover, Origin: "api"}); err == nil || ctx.Err() != nil {
		t.Fatalf("a switchover took the lock from a reseed: %v (reseed cancelled: %v)", err, ctx.Err())
	}
	// The monitor's failover (Wait 0) cancels the reseed and gets the lock once it unwound.
	start := time.Now()
	rel, err := m.acquire(context.Background(), ActionRequest{Kind: PlanFailover, Automatic: true, Origin: "monitor"})
	if err != nil {
		t.Fatalf("failover did not get the lock: %v", err)
	}
	defer rel()
	if ctx.Err() == nil {
		t.Fatal("the reseed was not cancelled")
	}
	if k, _ := m.Running(); k != PlanFailover {
		t.Fatalf("running %q", k)
	}
	t.Logf("failover got the lock %v after cancelling the reseed", time.Since(start).Round(time.Millisecond))
}
