package cluster

import (
	"strings"
	"testing"
	"time"

	"replication-manager-pro/topology"
)

func analysed(t *testing.T, s *topology.Snapshot) *topology.Snapshot {
	t.Helper()
	s.Problems = Analyze(s, AnalyzeOptions{MaxLag: 30})
	s.IsFailable = Failable(s.Problems)
	return s
}

func TestDecideFailoverPreconditions(t *testing.T) {
	now := time.Unix(1000, 0)
	auto := PlanOptions{Elect: ElectOptions{CheckReplication: true, MaxLag: 30}, Automatic: true, Mode: "automatic", Limit: 3, TimeLimit: time.Minute, Now: now}
	dead := func() *topology.Snapshot {
		return analysed(t, deadMasterSnapshot(t, replica("db2", 2, "0-1-99"), replica("db3", 3, "0-1-98")))
	}
	healthy := func() *topology.Snapshot {
		return analysed(t, discoverSeq(t, []Observation{obs("db1", 1, pos("0-1-100")), replica("db2", 2, "0-1-100"), replica("db3", 3, "0-1-100")}))
	}
	suspect := func() *topology.Snapshot {
		up := []Observation{obs("db1", 1, pos("0-1-100")), replica("db2", 2, "0-1-100"), replica("db3", 3, "0-1-100")}
		d := []Observation{obs("db1", 1, down), replica("db2", 2, "0-1-100"), replica("db3", 3, "0-1-100")}
		return analysed(t, discoverSeq(t, up, d)) // replicas' IO threads still Yes
	}
	cases := []struct {
		name string
		snap *topology.Snapshot
		hist FailoverHistory
		opt  func(*PlanOptions)
		code RefusalCode
		want string // winner when not refused
	}{
		{name: "dead master, automatic", snap: dead(), want: "db2:3306"},
		{name: "manual mode", snap: dead(), opt: func(o *PlanOptions) { o.Mode = "manual" }, code: RefuseManualMode},
		{name: "limit reached", snap: dead(), hist: FailoverHistory{Count: 3}, code: RefuseLimit},
		{name: "unlimited with 0", snap: dead(), hist: FailoverHistory{Count: 30}, opt: func(o *PlanOptions) { o.Limit = 0 }, want: "db2:3306"},
		{name: "too soon", snap: dead(), hist: FailoverHistory{Count: 1, Last: now.Add(-30 * time.Second)}, code: RefuseTooSoon},
		{name: "late enough", snap: dead(), hist: FailoverHistory{Count: 1, Last: now.Add(-2 * time.Minute)}, want: "db2:3306"},
		{name: "healthy master is not dead", snap: healthy(), code: RefuseNotDead},
		{name: "replicas still see the master", snap: suspect(), code: RefuseNotDead},
		{name: "operator on a live master", snap: healthy(), opt: func(o *PlanOptions) { o.Automatic = false }, code: RefuseMasterAlive},
		{name: "operator forces a live master", snap: healthy(), opt: func(o *PlanOptions) { o.Automatic, o.Force = false, true }, want: "db2:3306"},
		{name: "operator on a suspect master whose replicas still see it", snap: suspect(), opt: func(o *PlanOptions) { o.Automatic = false }, code: RefuseNotDead},
		{name: "no candidate", snap: analysed(t, deadMasterSnapshot(t, replica("db2", 2, "0-1-99", lag(99)))), code: RefuseNoCandidate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := auto
			if c.opt != nil {
				c.opt(&o)
			}
			p := DecideFailover(c.snap, c.hist, o)
			if p.Code != c.code {
				t.Fatalf("code %q (%s), want %q", p.Code, p.Refused, c.code)
			}
			if c.code != "" {
				if p.Refused == "" || len(p.Steps) != 0 {
					t.Fatalf("refused plan with steps or no reason: %+v", p)
				}
				return
			}
			if p.NewMaster.String() != c.want {
				t.Fatalf("new master %s, want %s", p.NewMaster, c.want)
			}
			var kinds []string
			for _, s := range p.Steps {
				kinds = append(kinds, string(s.Kind))
			}
			if got := strings.Join(kinds, ","); got != "fence-old-master,wait-catch-up,promote,notify-routers,repoint-replica,record" {
				t.Fatalf("steps %s", got)
			}
		})
	}
}

func TestDecideSwitchoverStepsAndScripts(t *testing.T) {
	s := analysed(t, discoverSeq(t, []Observation{obs("db1", 1, pos("0-1-100")), replica("db2", 2, "0-1-100"), replica("db3", 3, "0-1-100")}))
	p := DecideSwitchover(s, PlanOptions{Elect: ElectOptions{CheckReplication: true, MaxLag: 30}, PreScript: "/bin/pre", PostScript: "/bin/post"})
	var kinds []string
	for _, st := range p.Steps {
		kinds = append(kinds, string(st.Kind)+"@"+st.Server.String())
	}
	want := "pre-script@:0,check-long-writes@db1:3306,freeze-old-master@db1:3306,wait-catch-up@db2:3306,promote@db2:3306,notify-routers@db2:3306,demote-old-master@db1:3306,repoint-replica@db3:3306,post-script@:0,record@:0"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("steps\n%s\nwant\n%s", got, want)
	}
	dead := analysed(t, deadMasterSnapshot(t, replica("db2", 2, "0-1-99")))
	if p := DecideSwitchover(dead, PlanOptions{}); p.Code != RefuseMasterDown {
		t.Fatalf("switchover with a dead master: %+v", p)
	}
}

func TestSaveBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 3: 8 * time.Second, 9: 5 * time.Minute, 50: 5 * time.Minute} {
		if got := saveBackoff(n); got != want {
			t.Errorf("saveBackoff(%d) = %v, want %v", n, got, want)
		}
	}
}
