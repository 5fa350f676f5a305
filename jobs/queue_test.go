package jobs

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQueueRunsOneJobPerServerInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.json")
	q := NewQueue("c1", path, nil)
	release := make(chan struct{})
	var order []int64
	block := func(ctx context.Context, j Job) (Outcome, error) {
		order = append(order, j.ID)
		<-release
		return Outcome{Result: "ok", Backup: "b1"}, nil
	}
	a, err := q.Enqueue("s1:3306", BackupPhysical, "api", block)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue("s1:3306", BackupPhysical, "api", block); !errors.Is(err, ErrBusy) {
		t.Fatalf("same kind twice: %v", err)
	}
	b, err := q.Enqueue("s1:3306", Optimize, "scheduler", func(ctx context.Context, j Job) (Outcome, error) {
		order = append(order, j.ID)
		return Outcome{}, errors.New("optimize failed: disk")
	})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := q.Get(b.ID); j.State != Queued {
		t.Fatalf("second job of the server %s while the first runs", j.State)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ja, _ := q.Wait(ctx, a.ID)
	jb, _ := q.Wait(ctx, b.ID)
	if ja.State != Done || ja.Backup != "b1" || ja.Task != "mariabackup" || ja.Duration <= 0 {
		t.Fatalf("first job %+v", ja)
	}
	if jb.State != Failed || !strings.Contains(jb.Error, "disk") {
		t.Fatalf("second job %+v", jb)
	}
	if len(order) != 2 || order[0] != a.ID {
		t.Fatalf("order %v", order)
	}
	q.Close()
	// The history survives a restart.
	q2 := NewQueue("c1", path, nil)
	defer q2.Close()
	if l := q2.List("s1:3306"); len(l) != 2 || l[0].ID != b.ID {
		t.Fatalf("history %+v", l)
	}
}

func TestQueueCancelKillsRunningJob(t *testing.T) {
	q := NewQueue("c1", "", nil)
	defer q.Close()
	j, _ := q.Enqueue("s1:3306", BackupLogical, "api", func(ctx context.Context, j Job) (Outcome, error) {
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	})
	time.Sleep(50 * time.Millisecond)
	if err := q.Cancel(j.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, _ := q.Wait(ctx, j.ID)
	if got.State != Failed || !strings.Contains(got.Error, "canceled") {
		t.Fatalf("%+v", got)
	}
}

func TestKindsMapToTheOriginalsTasks(t *testing.T) {
	for k, task := range map[Kind]string{BackupPhysical: "mariabackup", ReseedPhysical: "reseedmariabackup", ReseedLogical: "reseedmysqldump", ErrorLog: "error", SlowLog: "slowquery", Optimize: "optimize"} {
		if k.Task() != task {
			t.Errorf("%s -> %s, want %s", k, k.Task(), task)
		}
		if got, ok := ParseKind(task); !ok || got != k {
			t.Errorf("ParseKind(%s) = %s", task, got)
		}
	}
}

// CancelKinds ends the running and the queued jobs of the kinds on one server, and leaves
// other kinds and other servers alone.
func TestQueueCancelKinds(t *testing.T) {
	q := NewQueue("c1", "", nil)
	defer q.Close()
	waitCancel := func(ctx context.Context, j Job) (Outcome, error) { <-ctx.Done(); return Outcome{}, ctx.Err() }
	running, _ := q.Enqueue("s1:3306", ReseedPhysical, "api", waitCancel)
	queued, _ := q.Enqueue("s1:3306", ReseedLogical, "api", waitCancel)
	other, _ := q.Enqueue("s1:3306", Optimize, "api", waitCancel)
	elsewhere, _ := q.Enqueue("s2:3306", ReseedLogical, "api", waitCancel)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if j, _ := q.Get(running.ID); j.State == Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first job does not run")
		}
	}
	ids := q.CancelKinds("s1:3306", []Kind{ReseedPhysical, ReseedLogical})
	if len(ids) != 2 || ids[0] != running.ID || ids[1] != queued.ID {
		t.Fatalf("canceled %v, want [%d %d]", ids, running.ID, queued.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range ids {
		if j, _ := q.Wait(ctx, id); j.State != Failed || !strings.Contains(j.Error, "cancel") {
			t.Fatalf("job %d: %+v", id, j)
		}
	}
	for _, id := range []int64{other.ID, elsewhere.ID} {
		if j, _ := q.Get(id); j.State == Failed {
			t.Fatalf("job %d of another kind or server was canceled: %+v", id, j)
		}
	}
	if ids := q.CancelKinds("s1:3306", []Kind{ReseedPhysical}); len(ids) != 0 {
		t.Fatalf("nothing left to cancel, got %v", ids)
	}
	q.CancelKinds("s1:3306", []Kind{Optimize})
	q.CancelKinds("s2:3306", []Kind{ReseedLogical})
}
