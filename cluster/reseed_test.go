package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/backup"
	"replication-manager-pro/gtid"
	"replication-manager-pro/internal/dbproc"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/internal/writeload"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

func reseedSnap(t *testing.T) *topology.Snapshot {
	t.Helper()
	s := discoverSeq(t, []Observation{
		obs("10.0.0.1:3306", 1, writable, pos("0-1-100")),
		obs("10.0.0.2:3306", 2, healthyReplicaOf("10.0.0.1:3306"), readOnly, pos("0-1-100")),
		obs("10.0.0.3:3306", 3, readOnly, func(o *Observation) { o.Facts.CurrentPos = nil }),
	})
	return s
}

func TestDecideReseedPicksNewestBackupTheMasterHolds(t *testing.T) {
	s := reseedSnap(t)
	target := addr("10.0.0.3:3306")
	now := time.Now()
	backups := []backup.Meta{
		{ID: "diverged", Kind: backup.Physical, GTID: "0-1-100,0-9-3", SHA256: "x", Size: 1, Start: now},
		{ID: "logical-new", Kind: backup.Logical, GTID: "0-1-90", SHA256: "x", Size: 1, Start: now.Add(-time.Minute)},
		{ID: "physical-old", Kind: backup.Physical, GTID: "0-1-80", SHA256: "x", Size: 1, Start: now.Add(-time.Hour)},
		{ID: "failed", Kind: backup.Physical, Start: now},
	}
	cases := []struct {
		name string
		o    ReseedOptions
		want string // Seed.String(), or the refusal code
	}{
		{"newest usable, any kind", ReseedOptions{Backups: backups, Physical: true}, "logical backup logical-new"},
		{"physical only", ReseedOptions{Backups: backups, Physical: true, Kind: backup.Physical}, "physical backup physical-old"},
		{"no process control: no physical restore", ReseedOptions{Backups: backups[2:], Physical: false}, "logical stream from 10.0.0.2:3306"},
		{"no backup: physical stream from the replica", ReseedOptions{Physical: true, PhysicalFrom: map[ipv6.HostPort]bool{addr("10.0.0.2:3306"): true}}, "physical stream from 10.0.0.2:3306"},
		{"no backup, donor not local: logical stream", ReseedOptions{Physical: true}, "logical stream from 10.0.0.2:3306"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DecideReseed(s, target, c.o)
			if p.Refused != "" {
				t.Fatalf("refused: %s", p.Refused)
			}
			if len(p.Steps) != 3 || p.Steps[1].Seed == nil || p.Steps[1].Seed.String() != c.want {
				t.Fatalf("plan %+v, want source %s", p.Steps, c.want)
			}
			if p.NewMaster != addr("10.0.0.1:3306") || p.Steps[0].Kind != StepSeedPrepare || p.Steps[2].Kind != StepSeedReplicate {
				t.Fatalf("plan %+v", p)
			}
		})
	}
	for _, c := range []struct {
		target string
		code   RefusalCode
	}{{"10.0.0.1:3306", RefuseNothingToDo}, {"10.0.0.9:3306", RefuseUnknownServer}} {
		if p := DecideReseed(s, addr(c.target), ReseedOptions{}); p.Code != c.code {
			t.Errorf("%s: code %q (%s), want %q", c.target, p.Code, p.Refused, c.code)
		}
	}
}

func TestSeedRecoveriesOnlyForEmptyServers(t *testing.T) {
	s := reseedSnap(t)
	recs := seedRecoveries(s, RecoveryOptions{AutoSeed: true})
	if len(recs) != 1 || recs[0].Server != addr("10.0.0.3:3306") || recs[0].Kind != RecoverReseed {
		t.Fatalf("recoveries %+v", recs)
	}
	if r := seedRecoveries(s, RecoveryOptions{AutoSeed: false}); len(r) != 0 {
		t.Fatalf("autoseed off: %+v", r)
	}
	if r := seedRecoveries(s, RecoveryOptions{AutoSeed: true, SeedHold: map[ipv6.HostPort]bool{addr("10.0.0.3:3306"): true}}); len(r) != 0 {
		t.Fatalf("held after a failure: %+v", r)
	}
	withData := discoverSeq(t, []Observation{
		obs("10.0.0.1:3306", 1, writable, pos("0-1-100")),
		obs("10.0.0.3:3306", 3, readOnly, pos("0-3-5")),
	})
	if r := seedRecoveries(withData, RecoveryOptions{AutoSeed: true}); len(r) != 0 {
		t.Fatalf("a standalone server holding transactions is not autoseeded: %+v", r)
	}
}

func TestDivergedFormerMasterReseededOnlyOnceSaved(t *testing.T) {
	s := reseedSnap(t)
	srv := &s.Servers[2]
	srv.ReadOnly = true
	f := recoveryTable[topology.FormerMasterDiverged]
	o := RecoveryOptions{AutoRejoin: true, Fenced: map[ipv6.HostPort]bool{srv.Addr: true}}
	if k := f(s, topology.Problem{}, srv, o); k != RecoverNone {
		t.Fatalf("unsaved: %s", k)
	}
	o.Saved = map[ipv6.HostPort]bool{srv.Addr: true}
	if k := f(s, topology.Problem{}, srv, o); k != RecoverReseed {
		t.Fatalf("saved: %s", k)
	}
	o.Fenced = nil
	if k := f(s, topology.Problem{}, srv, o); k != RecoverFence {
		t.Fatalf("not fenced yet: %s", k)
	}
}

// testNode is the process control of a test server, as the local orchestrator gives it.
type testNode struct{ s *testenv.Server }

func (n testNode) DataDir() string                 { return filepath.Join(n.s.Dir(), "data") }
func (n testNode) Stop(ctx context.Context) error  { n.s.Shutdown(); return nil }
func (n testNode) Start(ctx context.Context) error { n.s.Restart(); return nil }

func seederFor(t *testing.T, c *testenv.Cluster) *backup.Seeder {
	t.Helper()
	realtest.LookPath(t, "mariadb-backup", "mariadb-backup")
	st, err := backup.OpenStore(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]*testenv.Server{}
	for _, s := range c.Servers {
		byAddr[mustAddr(s.Addr()).String()] = s
	}
	return &backup.Seeder{Store: st, Creds: backup.Credentials{User: testenv.RootUser, Password: testenv.RootPassword},
		Node: func(a ipv6.HostPort) backup.Node {
			if s := byAddr[a.String()]; s != nil {
				return testNode{s}
			}
			return nil
		},
		LocalDataDir: func(_ context.Context, a ipv6.HostPort) string {
			if s := byAddr[a.String()]; s != nil {
				return filepath.Join(s.Dir(), "data")
			}
			return ""
		},
		TmpDir: t.TempDir()}
}

// wipe replaces a server's data directory by a fresh one (system tables and accounts only)
// and starts it: a replica whose disk was lost, or a new server.
func wipe(t *testing.T, s *testenv.Server) {
	t.Helper()
	s.Shutdown()
	data := filepath.Join(s.Dir(), "data")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := dbproc.Bootstrap(ctx, data, nil, []dbproc.Account{
		{User: "root", Host: "localhost", Password: testenv.RootPassword},
		{User: "root", Host: "%", Password: testenv.RootPassword, Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
		{User: testenv.ReplUser, Host: "%", Password: testenv.ReplPassword, Grants: "REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR, REPLICATION MASTER ADMIN ON *.*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Restart()
}

// waitSynced waits until replica r holds the master's position and replicates from it.
func waitSynced(t *testing.T, master, r *testenv.Server, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		want := master.QueryString(t, "SELECT @@gtid_binlog_pos")
		got := r.QueryString(t, "SELECT @@gtid_current_pos")
		st := r.SlaveStatus(t)
		if got == want && st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not in sync with %s: %s vs %s, %v", r.Addr(), master.Addr(), r.QueryString(t, "SELECT @@gtid_current_pos"),
		master.QueryString(t, "SELECT @@gtid_binlog_pos"), r.SlaveStatus(t))
}

// A replica whose datadir is wiped comes back in sync by itself with autoseed, from the
// newest usable (physical) backup, while sysbench writes on the master; its data then
// equals the master's.
func TestAutoseedWipedReplicaUnderLoad(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.AutoRejoin = true })
	seeder := seederFor(t, c)
	m.SetSeeding(&SeedConfig{Seeder: seeder, AutoSeed: true, User: testenv.RootUser, Password: testenv.RootPassword})
	master, src, victim := c.Servers[0], c.Servers[1], c.Servers[2]
	writeload.Prepare(t, master, 2, 2000)
	c.WaitSync(t)
	load := writeload.Start(t, master, 2, 2000, 2, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := backup.TakePhysical(ctx, seeder.Store, backup.PhysicalOptions{Server: mustAddr(src.Addr()), DataDir: filepath.Join(src.Dir(), "data"),
		Creds: seeder.Creds})
	if err != nil {
		t.Fatal(err)
	}
	runMonitor(t, m)
	waitFor(t, m, 10*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	wipe(t, victim)
	deadline := time.Now().Add(90 * time.Second)
	for len(eventsWith(events, "reseed from")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reseed: %v", eventsWith(events, "reseed"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	load.Stop()
	waitSynced(t, master, victim, 60*time.Second)
	writeload.Equal(t, "reseeded replica", writeload.Checksums(t, master), writeload.Checksums(t, victim))
	if done := eventsWith(events, b.ID); len(done) == 0 {
		t.Fatalf("the reseed did not use the backup %s: %v", b.ID, eventsWith(events, "reseed"))
	}
	if ro := victim.QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Fatalf("reseeded replica read_only = %s", ro)
	}
}

// An old master that diverged in a failover is reseeded by autorejoin once its extra
// transactions are saved and reported; with no backup in the store the data is streamed
// from a healthy replica, and the stream is kept as a backup.
func TestAutorejoinReseedsDivergedFormerMaster(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	createWriterTable(t, c)
	saveDir := t.TempDir()
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) {
		mc.AutoRejoin = true
		mc.SaveDiverged = &SaveConfig{User: testenv.RootUser, Password: testenv.RootPassword, Dir: saveDir}
	})
	seeder := seederFor(t, c)
	m.SetSeeding(&SeedConfig{Seeder: seeder, User: testenv.RootUser, Password: testenv.RootPassword})
	runMonitor(t, m)
	waitFor(t, m, 5*time.Second, "healthy", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	for _, r := range c.Replicas() {
		r.Exec(t, "STOP SLAVE IO_THREAD")
	}
	old := c.Master()
	old.Exec(t, "INSERT INTO rmp.w VALUES (1, NOW(6)), (2, NOW(6))")
	extra := old.QueryString(t, "SELECT @@gtid_binlog_pos")
	old.Kill()
	s := waitNewMaster(t, m, old.Addr(), 15*time.Second)
	nm, _ := s.MasterServer()
	var newMaster *testenv.Server
	for _, r := range c.Replicas() {
		if mustAddr(r.Addr()) == nm.Addr {
			newMaster = r
		}
	}
	old.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for len(eventsWith(events, "reseed from")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("diverged old master not reseeded: %v / %v", eventsWith(events, "reseed"), codes(m.Snapshot().Problems))
		}
		time.Sleep(100 * time.Millisecond)
	}
	newMaster.Exec(t, "INSERT INTO rmp.w VALUES (1000, NOW(6))")
	waitSynced(t, newMaster, old, 60*time.Second)
	if got := old.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id IN (1, 2)"); got != "0" {
		t.Fatalf("the diverged rows are still on the reseeded old master")
	}
	if got := old.QueryString(t, "SELECT COUNT(*) FROM rmp.w WHERE id = 1000"); got != "1" {
		t.Fatalf("the reseeded old master does not replicate")
	}
	// Its extra transactions were reported and saved before the reseed.
	saved := eventsWith(events, "saved to ")
	if len(saved) == 0 {
		t.Fatal("no data-loss report")
	}
	ext, _ := gtid.Parse(extra)
	reported := false
	for _, e := range saved {
		for _, g := range ext {
			if strings.Contains(e.Message, g.String()) {
				reported = true
			}
		}
	}
	if !reported {
		t.Fatalf("the report does not name the extra GTIDs %s: %v", extra, saved)
	}
	if h := m.History(); len(h.FormerMasters) != 0 {
		t.Fatalf("former master still pending: %+v", h.FormerMasters)
	}
	if l, _ := seeder.Store.List(); len(l) != 1 || l[0].Origin != "reseed" {
		t.Fatalf("the stream was not kept as a backup: %+v", l)
	}
}

// A third server added to a running cluster: a brand-new, empty mariadbd (a fresh datadir,
// no replication) listed among the hosts when the monitor starts, as after a reload with
// one more host. autoseed seeds it from a backup and it replicates, read-only, with the
// master's data.
func TestNewEmptyServerAddedIsSeeded(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	master, src, added := c.Servers[0], c.Servers[1], c.Servers[2]
	wipe(t, added) // a new server: nothing on it, replicating from nobody
	writeload.Prepare(t, master, 2, 2000)
	if got := src.QueryString(t, "SELECT MASTER_GTID_WAIT(?, 20)", master.QueryString(t, "SELECT @@gtid_binlog_pos")); got != "0" {
		t.Fatal("source replica did not catch up")
	}
	m, events := failoverMonitor(t, c, func(mc *MonitorConfig) { mc.AutoRejoin = true })
	seeder := seederFor(t, c)
	m.SetSeeding(&SeedConfig{Seeder: seeder, AutoSeed: true, User: testenv.RootUser, Password: testenv.RootPassword})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := backup.TakePhysical(ctx, seeder.Store, backup.PhysicalOptions{Server: mustAddr(src.Addr()), DataDir: filepath.Join(src.Dir(), "data"), Creds: seeder.Creds}); err != nil {
		t.Fatal(err)
	}
	runMonitor(t, m)
	deadline := time.Now().Add(90 * time.Second)
	for len(eventsWith(events, "reseed from")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the new server was not seeded: %v %s", eventsWith(events, "reseed"), codes(m.Snapshot().Problems))
		}
		time.Sleep(100 * time.Millisecond)
	}
	master.Exec(t, "CREATE DATABASE after_seed")
	waitSynced(t, master, added, 60*time.Second)
	writeload.Equal(t, "seeded server", writeload.Checksums(t, master), writeload.Checksums(t, added))
	waitFor(t, m, 10*time.Second, "three healthy servers", func(s *topology.Snapshot) bool { return states(s) == "Master,Slave,Slave" })
	if ro := added.QueryString(t, "SELECT @@read_only"); ro != "1" {
		t.Fatalf("seeded server read_only = %s", ro)
	}
}
