package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Journal records the progress of the plan being run, before and after each step, in one
// file per cluster (<state dir>/<cluster>/plan-journal.json). A manager killed mid-plan
// finds it on start and resumes or rolls back that plan before it does anything else.
// Writes go through a temporary file and a rename, so a reader sees one whole record; they
// are not fsynced: the journal protects against the manager dying, not the machine.
type Journal struct {
	path string
	mu   sync.Mutex
	rec  JournalRecord
	err  error // the first write error, reported once
}

// JournalRecord is the journal's content.
type JournalRecord struct {
	Plan     Plan      `json:"plan"`
	Started  time.Time `json:"started"`
	Running  []int     `json:"running,omitempty"` // steps started, not yet done
	Done     []int     `json:"done,omitempty"`    // steps done (with or without error)
	Promoted bool      `json:"promoted"`          // the new master took writes and was recorded
	State    RunState  `json:"state"`
}

// OpenJournal returns the journal of a cluster's state directory; nil (journaling off) when
// there is no state directory.
func OpenJournal(stateDir, cluster string) *Journal {
	if stateDir == "" {
		return nil
	}
	return &Journal{path: filepath.Join(stateDir, cluster, "plan-journal.json")}
}

// Load returns an unfinished plan's record, if one was left.
func (j *Journal) Load() (JournalRecord, bool, error) {
	if j == nil {
		return JournalRecord{}, false, nil
	}
	b, err := os.ReadFile(j.path)
	if os.IsNotExist(err) {
		return JournalRecord{}, false, nil
	}
	if err != nil {
		return JournalRecord{}, false, fmt.Errorf("plan journal: %w", err)
	}
	var r JournalRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return JournalRecord{}, false, fmt.Errorf("plan journal %s: %w", j.path, err)
	}
	return r, true, nil
}

// Clear removes the record of a plan that was finished by a resume.
func (j *Journal) Clear() error {
	if j == nil {
		return nil
	}
	if err := os.Remove(j.path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("plan journal: %w", err)
	}
	return nil
}

func (j *Journal) begin(p Plan, st RunState) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec = JournalRecord{Plan: p, Started: time.Now(), State: st}
	j.writeLocked()
}

// resumeFrom continues a loaded record (its done steps stay done).
func (j *Journal) resumeFrom(r JournalRecord) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	r.Running = nil
	j.rec = r
	j.writeLocked()
}

func (j *Journal) stepStarted(i int) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Running = append(j.rec.Running, i)
	j.writeLocked()
}

func (j *Journal) stepDone(i int, st RunState) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var running []int
	for _, r := range j.rec.Running {
		if r != i {
			running = append(running, r)
		}
	}
	j.rec.Running, j.rec.State = running, st
	j.rec.Done = append(j.rec.Done, i)
	j.writeLocked()
}

func (j *Journal) promoted() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Promoted = true
	j.writeLocked()
}

// end marks the plan finished: the record is removed.
func (j *Journal) end() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := os.Remove(j.path); err != nil && !os.IsNotExist(err) && j.err == nil {
		j.err = err
	}
}

// Err returns the first error the journal met writing, if any.
func (j *Journal) Err() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

func (j *Journal) writeLocked() {
	b, err := json.Marshal(j.rec)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(j.path), 0o750)
	}
	if err == nil {
		tmp := j.path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o640); err == nil {
			err = os.Rename(tmp, j.path)
		}
	}
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("plan journal: %w", err)
	}
}
