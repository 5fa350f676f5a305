package eventlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestEventLogRotatesBySize reproduces issue 11 item 7: events.jsonl never rotated. With
// the configuration's defaults (5 MB, 7 kept) 6 MB of events leave a current file under
// 5 MB and one rotated file, every line whole.
func TestEventLogRotatesBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("m", 180)
	written := 0
	for written < 6<<20 {
		e, err := l.Add(Event{Cluster: "c1", Kind: "state", Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(e)
		written += len(b) + 1
	}
	l.Close()
	st, err := os.Stat(path)
	if err != nil || st.Size() > 5<<20 {
		t.Fatalf("events.jsonl: %v %v, want at most 5 MB", st.Size(), err)
	}
	if st, err := os.Stat(path + ".1"); err != nil || st.Size() > 5<<20 || st.Size() < 4<<20 {
		t.Fatalf("events.jsonl.1: %v", err)
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Fatal("a second rotated file after 6 MB")
	}
	evs, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			t.Fatalf("events out of order or lost at %d: %d after %d", i, evs[i].Seq, evs[i-1].Seq)
		}
	}
	if evs[0].Seq != 1 {
		t.Fatalf("first event %d", evs[0].Seq)
	}
}

// TestRotationKeepsBackupsAndWholeLines: many rotations keep exactly Backups rotated files,
// each within MaxBytes, every line whole, also under concurrent writers; a smaller Backups
// setting removes the older files at the next rotation; MaxBytes 0 never rotates.
func TestRotationKeepsBackupsAndWholeLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	l, err := OpenRotated(path, 10, Rotation{MaxBytes: 4096, Backups: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Add(Event{Cluster: fmt.Sprintf("c%d", w), Kind: "state", Message: strings.Repeat("x", i%200)})
			}
		}(w)
	}
	wg.Wait()
	l.Close()
	names, _ := filepath.Glob(path + "*")
	if len(names) != 4 {
		t.Fatalf("files %v, want the current one and 3 rotated", names)
	}
	for _, n := range names {
		st, _ := os.Stat(n)
		if st.Size() > 4096 {
			t.Errorf("%s: %d bytes over 4096", n, st.Size())
		}
		f, _ := os.Open(n)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: a split line: %v", n, err)
			}
		}
		f.Close()
	}

	// Fewer backups: the extra files go at the next rotation.
	l, err = OpenRotated(path, 10, Rotation{MaxBytes: 4096, Backups: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		l.Add(Event{Cluster: "c1", Kind: "state", Message: strings.Repeat("y", 100)})
	}
	l.Close()
	if names, _ := filepath.Glob(path + "*"); len(names) != 2 {
		t.Fatalf("after Backups 1: %v", names)
	}

	// No rotation.
	p2 := filepath.Join(dir, "plain.log")
	rf, err := OpenRotating(p2, Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		rf.Write([]byte(strings.Repeat("z", 99) + "\n"))
	}
	rf.Close()
	if st, _ := os.Stat(p2); st.Size() != 10000 {
		t.Fatalf("unrotated file: %d bytes", st.Size())
	}
	if _, err := rf.Write([]byte("x")); err == nil {
		t.Fatal("write after close")
	}
	// Backups 0: the file is started afresh, nothing kept.
	p3 := filepath.Join(dir, "none.log")
	rf, _ = OpenRotating(p3, Rotation{MaxBytes: 100, Backups: 0})
	for i := 0; i < 10; i++ {
		rf.Write([]byte(strings.Repeat("w", 59) + "\n"))
	}
	rf.Close()
	if names, _ := filepath.Glob(p3 + "*"); len(names) != 1 {
		t.Fatalf("Backups 0: %v", names)
	}
	if st, _ := os.Stat(p3); st.Size() != 60 {
		t.Fatalf("Backups 0: %d bytes", st.Size())
	}
}
