package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Journal records the progress of the plan being run, before and after each step, as one
// document of the cluster's state store (plan-journal.json: a file under the state
// directory, or a key in etcd with several managers). A manager killed mid-plan, or the
// manager that takes the cluster over, finds it on start and resumes or rolls back that plan
// before it does anything else.
type Journal struct {
	store StateStore
	mu    sync.Mutex
	rec   JournalRecord
	err   error // the first write error, reported once
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
	return NewJournal(NewFileStore(stateDir, cluster))
}

// NewJournal returns a journal kept in store; nil (journaling off) without a store.
func NewJournal(store StateStore) *Journal {
	if store == nil {
		return nil
	}
	return &Journal{store: store}
}

// journalTimeout bounds one journal write or read (a shared store is remote).
const journalTimeout = 5 * time.Second

// Load returns an unfinished plan's record, if one was left.
func (j *Journal) Load() (JournalRecord, bool, error) {
	if j == nil {
		return JournalRecord{}, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	b, ok, err := j.store.Get(ctx, docJournal)
	if err != nil {
		return JournalRecord{}, false, fmt.Errorf("plan journal: %w", err)
	}
	if !ok {
		return JournalRecord{}, false, nil
	}
	var r JournalRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return JournalRecord{}, false, fmt.Errorf("plan journal: %w", err)
	}
	return r, true, nil
}

// Clear removes the record of a plan that was finished by a resume.
func (j *Journal) Clear() error {
	if j == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	if err := j.store.Delete(ctx, docJournal); err != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	if err := j.store.Delete(ctx, docJournal); err != nil && j.err == nil {
		j.err = fmt.Errorf("plan journal: %w", err)
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
		ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
		err = j.store.Put(ctx, docJournal, b)
		cancel()
	}
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("plan journal: %w", err)
	}
}
