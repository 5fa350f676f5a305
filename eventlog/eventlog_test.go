package eventlog

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func TestRingKeepsNewestInOrder(t *testing.T) {
	l, err := Open("", 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := l.Add(Event{Cluster: "c1", Kind: "state", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := l.Recent("", 0)
	if len(got) != 3 || got[0].Message != "3" || got[2].Message != "5" || got[2].Seq != 5 {
		t.Fatalf("Recent = %+v", got)
	}
	if got := l.Recent("", 2); len(got) != 2 || got[0].Message != "4" {
		t.Fatalf("Recent(2) = %+v", got)
	}
	if got := l.Recent("other", 0); len(got) != 0 {
		t.Fatalf("other cluster: %+v", got)
	}
}

func TestFileSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "events.jsonl")
	l, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	l.Add(Event{Cluster: "c1", Server: "[::1]:3306", Kind: "state", OldState: "Slave", NewState: "Suspect"})
	l.Close()
	l2, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	l2.Add(Event{Cluster: "c2", Kind: "enforce", Message: "set read_only"})
	l2.Close()
	evs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].NewState != "Suspect" || evs[0].Server != "[::1]:3306" || evs[1].Cluster != "c2" || evs[0].Time.IsZero() {
		t.Fatalf("file events = %+v", evs)
	}
}

func TestConcurrentAdds(t *testing.T) {
	l, _ := Open(filepath.Join(t.TempDir(), "e.jsonl"), 100)
	defer l.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				l.Add(Event{Cluster: "c", Kind: "state"})
			}
		}()
	}
	wg.Wait()
	got := l.Recent("", 0)
	if len(got) != 100 || got[99].Seq != 400 {
		t.Fatalf("len %d last seq %d", len(got), got[len(got)-1].Seq)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Fatalf("sequence gap at %d", i)
		}
	}
}
