package haproxy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func hp(t testing.TB, s string) ipv6.HostPort {
	t.Helper()
	a, err := ipv6.ParseHostPort(s, 3306)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func lag(n int64) *int64 { return &n }

// snap builds a snapshot: states[i] is server i's state; the master is the first server in
// state Master (or Suspect/Failed when named by master).
func snap(t testing.TB, addrs []string, master int, states ...topology.State) *topology.Snapshot {
	t.Helper()
	s := &topology.Snapshot{Cluster: "c1", Master: master, Time: time.Unix(1700000000, 0)}
	for i, a := range addrs {
		srv := topology.Server{Addr: hp(t, a), State: states[i], Reachable: !states[i].IsDown()}
		srv.ID = topology.ServerIDFor(srv.Addr)
		if i != master {
			srv.Replications = []topology.Replication{{Source: hp(t, addrs[max(master, 0)]), IO: topology.ThreadYes, SQL: topology.ThreadYes, Lag: lag(0)}}
		}
		s.Servers = append(s.Servers, srv)
	}
	return s
}

func ipv4Settings(t testing.TB, servers []string) Settings {
	s := Settings{
		Cluster: "c1", WritePort: 3306, ReadPort: 3307, StatPort: 1988,
		WriteBind: []string{"0.0.0.0"}, ReadBind: []string{"0.0.0.0"},
		WorkDir: "/var/lib/replication-manager/c1/haproxy0",
		Rules:   Rules{ReadOnMasterNoSlave: true, MaxReplicationLag: 30},
	}
	for _, a := range servers {
		s.Servers = append(s.Servers, hp(t, a))
	}
	return s
}

func TestConfigGolden(t *testing.T) {
	v4 := []string{"10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306"}
	slap := []string{"[2001:db8:1::10]:2099", "[2001:db8:2::10]:2099", "10.0.74.12:2099"}
	cases := []struct {
		name string
		set  Settings
		snap *topology.Snapshot
	}{
		{"ipv4", ipv4Settings(t, v4), snap(t, v4, 0, topology.StateMaster, topology.StateSlave, topology.StateSlave)},
		{"slapos-ipv4-ipv6", func() Settings {
			s := ipv4Settings(t, slap)
			s.Cluster = "slapos cluster"
			s.WritePort, s.ReadPort, s.StatPort, s.APIPort = 2099, 2100, 2101, 2102
			s.WriteBind, s.ReadBind = []string{"10.0.74.10"}, []string{"10.0.74.10"}
			s.IPv6 = []string{"[2001:db8:1::5]"}
			s.WorkDir = "/srv/slapgrid/slappart7/srv/haproxy"
			s.BackendMaxConn = 1000
			return s
		}(), snap(t, slap, 1, topology.StateSlave, topology.StateMaster, topology.StateSlaveErr)},
		{"read-on-master", func() Settings {
			s := ipv4Settings(t, v4)
			s.Rules.ReadOnMaster = true
			return s
		}(), snap(t, v4, 0, topology.StateMaster, topology.StateSlave, topology.StateMaintenance)},
		{"no-replica", ipv4Settings(t, v4[:1]), snap(t, v4[:1], 0, topology.StateMaster)},
		{"no-snapshot", ipv4Settings(t, v4), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Config(c.set, c.snap)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name+".cfg")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./haproxy -run TestConfigGolden -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the generated config (rerun with -update if intended):\n%s", golden, got)
			}
		})
	}
}

func TestConfigReadOnMasterNoSlaveWhenReplicasDown(t *testing.T) {
	v4 := []string{"10.0.0.1:3306", "10.0.0.2:3306"}
	s := snap(t, v4, 0, topology.StateMaster, topology.StateFailed)
	set := ipv4Settings(t, v4)
	cfg, err := Config(set, s)
	if err != nil {
		t.Fatal(err)
	}
	master := SlotName(hp(t, v4[0]))
	read := cfg[strings.Index(cfg, "backend c1-read"):]
	if !strings.Contains(read, "server "+master+" 10.0.0.1:3306 check maxconn") && !strings.Contains(read, "server "+master+" 10.0.0.1:3306 check\n") {
		t.Fatalf("master not ready in the read backend when its only replica failed:\n%s", read)
	}
	set.Rules.ReadOnMasterNoSlave = false
	cfg, _ = Config(set, s)
	read = cfg[strings.Index(cfg, "backend c1-read"):]
	if !strings.Contains(read, "server "+master+" 10.0.0.1:3306 check disabled") {
		t.Fatalf("master ready in the read backend without read-on-master-no-slave:\n%s", read)
	}
}

func TestDesired(t *testing.T) {
	addrs := []string{"10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306", "[fd00::4]:3306"}
	l := Layout{"w", "r"}
	name := func(i int) string { return SlotName(hp(t, addrs[i])) }
	type want struct{ w, r [4]AdminState }
	M, D, R := Maint, Drain, Ready
	cases := []struct {
		name  string
		s     *topology.Snapshot
		rules Rules
		maint []int
		want  want
	}{
		{"healthy", snap(t, addrs, 0, topology.StateMaster, topology.StateSlave, topology.StateSlave, topology.StateSlave), Rules{ReadOnMasterNoSlave: true},
			nil, want{[4]AdminState{R, M, M, M}, [4]AdminState{M, R, R, R}}},
		{"read on master", snap(t, addrs, 0, topology.StateMaster, topology.StateSlave, topology.StateSlave, topology.StateSlave), Rules{ReadOnMaster: true},
			nil, want{[4]AdminState{R, M, M, M}, [4]AdminState{R, R, R, R}}},
		{"suspect master keeps the writes", snap(t, addrs, 0, topology.StateSuspect, topology.StateSlave, topology.StateSlave, topology.StateSlave), Rules{ReadOnMaster: true},
			nil, want{[4]AdminState{R, M, M, M}, [4]AdminState{R, R, R, R}}},
		{"failed master keeps the writes until a failover", snap(t, addrs, 0, topology.StateFailed, topology.StateSlave, topology.StateSlave, topology.StateSlave), Rules{ReadOnMasterNoSlave: true},
			nil, want{[4]AdminState{R, M, M, M}, [4]AdminState{M, R, R, R}}},
		{"broken replicas", snap(t, addrs, 1, topology.StateSlaveErr, topology.StateMaster, topology.StateFailed, topology.StateSlaveLate), Rules{},
			nil, want{[4]AdminState{M, R, M, M}, [4]AdminState{D, M, M, D}}},
		{"no valid replica: master reads", snap(t, addrs, 1, topology.StateSlaveErr, topology.StateMaster, topology.StateFailed, topology.StateStandAlone), Rules{ReadOnMasterNoSlave: true},
			nil, want{[4]AdminState{M, R, M, M}, [4]AdminState{D, R, M, M}}},
		{"operator maintenance drains", snap(t, addrs, 0, topology.StateMaster, topology.StateSlave, topology.StateSlave, topology.StateMaintenance), Rules{},
			[]int{2}, want{[4]AdminState{R, M, M, M}, [4]AdminState{M, R, D, D}}},
		{"master in maintenance drains", snap(t, addrs, 0, topology.StateMaster, topology.StateSlave, topology.StateSlave, topology.StateSlave), Rules{ReadOnMaster: true},
			[]int{0}, want{[4]AdminState{D, M, M, M}, [4]AdminState{D, R, R, R}}},
		{"ignored replica is offline", func() *topology.Snapshot {
			s := snap(t, addrs, 0, topology.StateMaster, topology.StateSlave, topology.StateSlave, topology.StateSlave)
			s.Servers[3].Ignored = true
			return s
		}(), Rules{}, nil, want{[4]AdminState{R, M, M, M}, [4]AdminState{M, R, R, M}}},
		{"no master", snap(t, addrs, -1, topology.StateStandAlone, topology.StateSlave, topology.StateSlave, topology.StateSlave), Rules{ReadOnMaster: true},
			nil, want{[4]AdminState{M, M, M, M}, [4]AdminState{M, R, R, R}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			maint := map[ipv6.HostPort]bool{}
			for _, i := range c.maint {
				maint[hp(t, addrs[i])] = true
			}
			got := Desired(router.IntentFor(c.s, c.rules.IntentOptions(maint)), l)
			for i := range addrs {
				if g := got[Slot{"w", name(i)}]; g != c.want.w[i] {
					t.Errorf("write slot of %s = %s, want %s", addrs[i], g, c.want.w[i])
				}
				if g := got[Slot{"r", name(i)}]; g != c.want.r[i] {
					t.Errorf("read slot of %s = %s, want %s", addrs[i], g, c.want.r[i])
				}
			}
		})
	}
}

func TestDesiredLagDrains(t *testing.T) {
	addrs := []string{"10.0.0.1:3306", "10.0.0.2:3306"}
	s := snap(t, addrs, 0, topology.StateMaster, topology.StateSlave)
	s.Servers[1].Replications[0].Lag = lag(31)
	got := Desired(router.IntentFor(s, Rules{MaxReplicationLag: 30}.IntentOptions(nil)), Layout{"w", "r"})
	if g := got[Slot{"r", SlotName(hp(t, addrs[1]))}]; g != Drain {
		t.Fatalf("replica 31 s behind: %s, want drain", g)
	}
}

// Sessions are cut on the write slots of every server but the master, and on both slots
// of an Offline server; a Drained one keeps its sessions.
func TestTranslateCuts(t *testing.T) {
	addrs := []string{"10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306"}
	s := snap(t, addrs, 0, topology.StateMaster, topology.StateFailed, topology.StateSlaveLate)
	l := Layout{"w", "r"}
	_, cut := translate(router.IntentFor(s, Rules{}.IntentOptions(nil)), l)
	name := func(i int) string { return SlotName(hp(t, addrs[i])) }
	want := map[Slot]bool{{"w", name(1)}: true, {"r", name(1)}: true, {"w", name(2)}: true}
	if len(cut) != len(want) {
		t.Fatalf("cut %v, want %v", cut, want)
	}
	for sl := range want {
		if !cut[sl] {
			t.Errorf("%s not cut", sl)
		}
	}
}

func TestDiffOrdersLeavingFirst(t *testing.T) {
	want := map[Slot]AdminState{{"w", "a"}: Ready, {"w", "b"}: Maint, {"r", "c"}: Drain, {"r", "d"}: Ready}
	have := map[Slot]AdminState{{"w", "a"}: Maint, {"w", "b"}: Ready, {"r", "c"}: Ready, {"r", "d"}: Ready}
	got := diff(want, have)
	if len(got) != 3 || got[0].slot != (Slot{"w", "b"}) || got[1].slot != (Slot{"r", "c"}) || got[2].slot != (Slot{"w", "a"}) {
		t.Fatalf("diff = %+v", got)
	}
	if len(diff(have, have)) != 0 {
		t.Fatal("no change expected")
	}
}

func TestValidate(t *testing.T) {
	s := ipv4Settings(t, []string{"10.0.0.1:3306"})
	s.ReadPort = s.WritePort
	s.IPv6 = []string{"10.0.0.9"}
	s.WriteBind = []string{"not an address"}
	s.WorkDir = ""
	err := s.Validate()
	for _, want := range []string{"haproxy-read-port", "haproxy-servers-ipv6", "haproxy-ip-write-bind", "working directory"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := Config(s, nil); err == nil {
		t.Fatal("Config accepted invalid settings")
	}
}

func TestSettingsFrom(t *testing.T) {
	toml := `
[Default]
monitoring-datadir = "/var/lib/rm"
[c1]
db-servers-hosts = "[2001:db8::1]:2099,10.0.0.2:2099"
haproxy = true
haproxy-servers = "10.0.0.10,10.0.0.11"
haproxy-servers-ipv6 = "[2001:db8::10],[2001:db8::11]"
haproxy-write-port = 2099
haproxy-read-port = 2100
haproxy-ip-write-bind = "10.0.0.11"
slapos-haproxy-partitions = "/srv/slapgrid/slappart8,/srv/slapgrid/slappart9"
proxy-servers-read-on-master = true
`
	cfg, err := config.LoadBytes("config.toml", []byte(toml), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cfg.Cluster("c1")
	s, err := SettingsFrom(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.IPv6) != 1 || s.IPv6[0] != "[2001:db8::11]" || s.WorkDir != "/srv/slapgrid/slappart9" || s.WritePort != 2099 ||
		s.ReadPort != 2100 || len(s.Servers) != 2 || !s.Rules.ReadOnMaster || s.WriteBind[0] != "10.0.0.11" || s.ReadBind[0] != "0.0.0.0" {
		t.Fatalf("settings %+v", s)
	}
	if _, err := Config(s, nil); err != nil {
		t.Fatal(err)
	}
}

func TestParseServersState(t *testing.T) {
	out := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n" +
		"3 w 1 db1 127.0.0.1 0 5 1 1 1 1 0 0 14 0 0 0 - 17010 - 0 0 - - 0\n" +
		"3 w 2 db2 ::1 2 8 1 1 1 8 2 0 6 0 0 0 - 17011 - 0 0 - - 0\n" +
		"3 w 3 db3 ::1 2 4 1 1 0 8 2 0 6 0 0 0 - 17012 - 0 0 - - 0\n\n"
	got, err := parseServersState("show servers state", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Admin() != Maint || got[1].Admin() != Drain || got[2].Admin() != Ready ||
		got[1].Addr != "::1" || got[1].Port != 17011 || got[0].Up() || !got[2].Up() {
		t.Fatalf("%+v", got)
	}
	_, err = parseServersState("show servers state x", "Can't find backend.\n\n")
	var he *Error
	if !errors.As(err, &he) || !errors.Is(err, ErrNoSuchServer) {
		t.Fatalf("error %v", err)
	}
}

func TestAnswers(t *testing.T) {
	got := answers("\nNo such server.\n\n\n")
	if len(got) != 3 || got[0] != "" || got[1] != "No such server." || got[2] != "" {
		t.Fatalf("%q", got)
	}
}
