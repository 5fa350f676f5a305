package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/internal/writeload"
	"replication-manager-pro/ipv6"
)

func addrOf(s *testenv.Server) ipv6.HostPort { return ipv6.HostPort{Host: "127.0.0.1", Port: s.Port()} }

var rootCreds = Credentials{User: testenv.RootUser, Password: testenv.RootPassword}

// restorePhysicalInto replaces a test server's data by a physical backup and restarts it.
func restorePhysicalInto(t *testing.T, st *Store, m Meta, s *testenv.Server) {
	t.Helper()
	f, err := st.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.Shutdown()
	data := filepath.Join(s.Dir(), "data")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := RestorePhysical(ctx, f, data, PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g != m.GTID {
		t.Fatalf("restored position %s, metadata says %s", g, m.GTID)
	}
	s.Restart()
}

func loadInto(t *testing.T, st *Store, m Meta, s *testenv.Server) {
	t.Helper()
	f, err := st.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := writeload.Open(t, s).DropUserDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	if err := LoadLogical(ctx, f, LoadOptions{Server: addrOf(s), Creds: rootCreds}); err != nil {
		t.Fatal(err)
	}
}

// A physical and a logical backup of a replica taken under sysbench writes restore into
// fresh servers whose tables equal, checksum for checksum, the source's data at the GTID
// position each backup recorded (a third server stopped exactly there is the reference);
// the same holds after both went through restic and the local copies were deleted.
func TestBackupsUnderWriteLoadRestoreAtTheirGTID(t *testing.T) {
	realtest.LookPath(t, "mariadb-backup", "mariadb-backup")
	realtest.LookPath(t, "mariadb-dump", "mariadb-client")
	realtest.LookPath(t, "restic", "restic")
	c := testenv.StartCluster(t, 3)
	targets := testenv.StartCluster(t, 2, testenv.Standalone())
	m, src, ref := c.Servers[0], c.Servers[1], c.Servers[2]
	writeload.Prepare(t, m, 2, 2000)
	c.WaitSync(t)
	ref.Exec(t, "STOP SLAVE")

	st, err := OpenStore(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	load := writeload.Start(t, m, 2, 2000, 2, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	datadir, err := writeload.Open(t, src).DataDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phys, err := TakePhysical(ctx, st, PhysicalOptions{Server: addrOf(src), DataDir: datadir, Creds: rootCreds})
	if err != nil {
		t.Fatal(err)
	}
	logi, err := TakeLogical(ctx, st, LogicalOptions{Server: addrOf(src), Creds: rootCreds})
	if err != nil {
		t.Fatal(err)
	}
	load.Stop()
	t.Logf("physical %s: %d bytes at %s; logical %s: %d bytes at %s", phys.ID, phys.Size, phys.GTID, logi.ID, logi.Size, logi.GTID)
	if phys.GTID == logi.GTID {
		t.Fatalf("both backups at %s: the load did not write between them", phys.GTID)
	}
	for _, b := range []Meta{phys, logi} {
		if err := st.Verify(b); err != nil {
			t.Fatal(err)
		}
	}

	writeload.StopAt(t, ref, phys.GTID)
	atPhys := writeload.Checksums(t, ref)
	restorePhysicalInto(t, st, phys, targets.Servers[0])
	writeload.Equal(t, "physical restore", atPhys, writeload.Checksums(t, targets.Servers[0]))

	writeload.StopAt(t, ref, logi.GTID)
	atLogi := writeload.Checksums(t, ref)
	loadInto(t, st, logi, targets.Servers[1])
	writeload.Equal(t, "logical restore", atLogi, writeload.Checksums(t, targets.Servers[1]))
	if got := targets.Servers[1].QueryString(t, "SELECT @@gtid_binlog_pos"); got != "" {
		t.Fatalf("loading the dump wrote to the binary log: %s", got)
	}

	// Through restic, with the local copies gone.
	r := &Restic{Repository: t.TempDir(), Password: "rmp-restic-test", TmpDir: t.TempDir()}
	for _, b := range []Meta{phys, logi} {
		id, err := r.Archive(ctx, st, b)
		if err != nil {
			t.Fatal(err)
		}
		b.Restic = id
		st.Update(b)
		st.Remove(b.ID)
	}
	snaps, err := r.Snapshots(ctx, "c1")
	if err != nil || len(snaps) != 2 {
		t.Fatalf("restic snapshots: %v %+v", err, snaps)
	}
	for _, sn := range snaps {
		got, err := r.Fetch(ctx, st, sn)
		if err != nil {
			t.Fatal(err)
		}
		want := phys
		if got.Kind == Logical {
			want = logi
		}
		if got.SHA256 != want.SHA256 || got.GTID != want.GTID {
			t.Fatalf("fetched %+v, archived %+v", got, want)
		}
	}
	restorePhysicalInto(t, st, phys, targets.Servers[0])
	writeload.Equal(t, "physical restore from restic", atPhys, writeload.Checksums(t, targets.Servers[0]))
	loadInto(t, st, logi, targets.Servers[1])
	writeload.Equal(t, "logical restore from restic", atLogi, writeload.Checksums(t, targets.Servers[1]))
}
