package backup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/internal/writeload"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/jobs"
)

// Failures end with a clear error and leave the earlier backup usable: a corrupt or
// truncated stored backup is refused before anything is restored, a full disk (a small
// tmpfs) fails the backup without leftovers, a killed job ends failed, and a wrong restic
// password is named as such.
func TestBackupFailuresLeaveEarlierBackupUsable(t *testing.T) {
	realtest.LookPath(t, "mariadb-backup", "mariadb-backup")
	realtest.LookPath(t, "restic", "restic")
	c := testenv.StartCluster(t, 2)
	src, target := c.Servers[0], c.Servers[1]
	writeload.Prepare(t, src, 2, 2000)
	c.WaitSync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, _ := OpenStore(t.TempDir(), "c1")
	datadir := filepath.Join(src.Dir(), "data")
	good, err := TakePhysical(ctx, st, PhysicalOptions{Server: addrOf(src), DataDir: datadir, Creds: rootCreds})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("corrupt and truncated backups are refused before the target is touched", func(t *testing.T) {
		for name, damage := range map[string]func(path string){
			"bit flip": func(p string) {
				f, _ := os.OpenFile(p, os.O_RDWR, 0)
				b := make([]byte, 1)
				f.ReadAt(b, good.Size/2)
				b[0] ^= 0x40
				f.WriteAt(b, good.Size/2)
				f.Close()
			},
			"truncated": func(p string) { os.Truncate(p, good.Size/3) },
		} {
			bad, err := TakePhysical(ctx, st, PhysicalOptions{Server: addrOf(src), DataDir: datadir, Creds: rootCreds})
			if err != nil {
				t.Fatal(err)
			}
			damage(st.Path(bad))
			if err := st.Verify(bad); !errors.Is(err, ErrCorruptStream) {
				t.Fatalf("%s: verify: %v", name, err)
			}
			target.Exec(t, "CREATE DATABASE IF NOT EXISTS keepme")
			seeder := &Seeder{Store: st, Creds: rootCreds, Node: func(a ipv6HostPort) Node { return testNode{target} }, TmpDir: t.TempDir()}
			_, err = seeder.Restore(ctx, addrOf(target), Source{Backup: bad.ID, Kind: Physical})
			if !errors.Is(err, ErrCorruptStream) || !strings.Contains(err.Error(), "not usable") {
				t.Fatalf("%s: restore: %v", name, err)
			}
			if n := target.QueryString(t, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='keepme'"); n != "1" {
				t.Fatalf("%s: the target was touched", name)
			}
			st.Remove(bad.ID)
		}
		if err := st.Verify(good); err != nil {
			t.Fatalf("the earlier backup: %v", err)
		}
	})

	t.Run("full disk", func(t *testing.T) {
		realtest.Root(t, "mounts a small tmpfs")
		dir := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
			realtest.Missing(t, "cannot mount a tmpfs: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		small, _ := OpenStore(dir, "c1")
		earlier, err := TakeLogical(ctx, small, LogicalOptions{Server: addrOf(src), Creds: rootCreds})
		if err != nil {
			t.Fatal(err)
		}
		_, err = TakePhysical(ctx, small, PhysicalOptions{Server: addrOf(src), DataDir: datadir, Creds: rootCreds})
		if err == nil || !strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("backup on a full disk: %v", err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("leftovers on the full disk: %v", ents)
		}
		if err := small.Verify(earlier); err != nil {
			t.Fatalf("the earlier backup: %v", err)
		}
	})

	t.Run("killed job", func(t *testing.T) {
		q := jobs.NewQueue("c1", "", nil)
		defer q.Close()
		j, err := q.Enqueue(addrOf(src).String(), jobs.BackupPhysical, "test", func(ctx context.Context, j jobs.Job) (jobs.Outcome, error) {
			m, err := TakePhysical(ctx, st, PhysicalOptions{Server: addrOf(src), DataDir: datadir, Creds: rootCreds})
			return jobs.Outcome{Backup: m.ID}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Cancel it as soon as it runs: the backup takes a few hundred ms here (a fixed sleep
		// let it finish first on a fast run).
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if cur, _ := q.Get(j.ID); cur.State != jobs.Queued || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // inside mariadb-backup's copy
		q.Cancel(j.ID)
		got, _ := q.Wait(ctx, j.ID)
		if got.State != jobs.Failed || !strings.Contains(got.Error, "canceled") {
			t.Fatalf("killed job: %+v", got)
		}
		l, _ := st.List()
		if len(l) != 1 || l[0].ID != good.ID {
			t.Fatalf("store after the killed job: %+v", l)
		}
		if err := st.Verify(good); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong restic password", func(t *testing.T) {
		repo := t.TempDir()
		r := &Restic{Repository: repo, Password: "right-password", TmpDir: t.TempDir()}
		if _, err := r.Archive(ctx, st, good); err != nil {
			t.Fatal(err)
		}
		wrong := &Restic{Repository: repo, Password: "wrong-password", TmpDir: t.TempDir()}
		_, err := wrong.Archive(ctx, st, good)
		if !errors.Is(err, ErrWrongPassword) || strings.Contains(err.Error(), "wrong-password") {
			t.Fatalf("archive with a wrong password: %v", err)
		}
		if _, err := wrong.Snapshots(ctx, "c1"); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("list with a wrong password: %v", err)
		}
		if s, err := r.Snapshots(ctx, "c1"); err != nil || len(s) != 1 {
			t.Fatalf("the right password still lists the backup: %v %v", s, err)
		}
	})
}

// A missing program is a clear error naming the Debian package, never a silent skip.
func TestMissingProgramsAreClearErrors(t *testing.T) {
	st, _ := OpenStore(t.TempDir(), "c1")
	_, err := TakePhysical(context.Background(), st, PhysicalOptions{Binary: "/nonexistent/mariadb-backup", DataDir: "/x"})
	if !errors.Is(err, ErrMissingTool) || !strings.Contains(err.Error(), "mariadb-backup") {
		t.Fatalf("%v", err)
	}
	r := &Restic{Binary: "/nonexistent/restic", Repository: t.TempDir(), Password: "x"}
	if _, err := r.Snapshots(context.Background(), "c1"); !errors.Is(err, ErrMissingTool) || !strings.Contains(err.Error(), "restic") {
		t.Fatalf("%v", err)
	}
}

type ipv6HostPort = ipv6.HostPort

// testNode is the process control of a test server.
type testNode struct{ s *testenv.Server }

func (n testNode) DataDir() string                 { return filepath.Join(n.s.Dir(), "data") }
func (n testNode) Stop(ctx context.Context) error  { n.s.Shutdown(); return nil }
func (n testNode) Start(ctx context.Context) error { n.s.Restart(); return nil }
