// Package eventlog records what happened to clusters: state changes, enforcements, failover
// and switchover steps. Events stay in a bounded in-memory ring for the API and UI, and are
// appended as JSON lines to a file in the working directory so they survive a restart; the
// file is rotated by size (Rotation), so it never grows without bound.
package eventlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Event is one thing that happened. Fields are optional except Time, Cluster and Kind.
type Event struct {
	Time     time.Time     `json:"time"`
	Seq      uint64        `json:"seq"`
	Cluster  string        `json:"cluster"`
	Server   string        `json:"server,omitempty"` // "host:port", IPv6 bracketed
	Kind     string        `json:"kind"`             // "state", "enforce", "failover-step", ...
	OldState string        `json:"oldState,omitempty"`
	NewState string        `json:"newState,omitempty"`
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Log is safe for concurrent use.
type Log struct {
	mu   sync.Mutex
	ring []Event
	next int // where the next event goes once the ring is full
	full bool
	seq  uint64
	file *RotatingFile
	now  func() time.Time
}

// DefaultCapacity is the number of events kept in memory.
const DefaultCapacity = 10000

// Open creates a log keeping capacity events in memory and appending to path ("" for memory
// only), rotated by DefaultRotation. The file's directory is created if needed.
func Open(path string, capacity int) (*Log, error) {
	return OpenRotated(path, capacity, DefaultRotation)
}

// OpenRotated is Open with the file rotated by rot (log-rotate-max-size and
// log-rotate-max-backup in the daemon).
func OpenRotated(path string, capacity int, rot Rotation) (*Log, error) {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	l := &Log{ring: make([]Event, 0, capacity), now: time.Now}
	if path == "" {
		return l, nil
	}
	f, err := OpenRotating(path, rot)
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	l.file = f
	return l, nil
}

// Add records an event, stamping its time (when unset) and sequence number, and returns it.
// A file write error is returned but the event is kept in memory all the same.
func (l *Log) Add(e Event) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	l.seq++
	e.Seq = l.seq
	if len(l.ring) < cap(l.ring) {
		l.ring = append(l.ring, e)
	} else {
		l.ring[l.next] = e
		l.next = (l.next + 1) % len(l.ring)
		l.full = true
	}
	if l.file == nil {
		return e, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("event log: %w", err)
	}
	b = append(b, '\n')
	// One write per event, unbuffered: the file is the record a DBA reads after a crash at
	// 3 a.m., and a line never straddles a rotation.
	if _, err := l.file.Write(b); err != nil {
		return e, fmt.Errorf("event log: %w", err)
	}
	return e, nil
}

// Recent returns up to n most recent events (all when n <= 0), oldest first, optionally only
// those of one cluster ("" for all).
func (l *Log) Recent(cluster string, n int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	ordered := make([]Event, 0, len(l.ring))
	if l.full {
		ordered = append(ordered, l.ring[l.next:]...)
		ordered = append(ordered, l.ring[:l.next]...)
	} else {
		ordered = append(ordered, l.ring...)
	}
	out := ordered[:0]
	for _, e := range ordered {
		if cluster == "" || e.Cluster == cluster {
			out = append(out, e)
		}
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return append([]Event(nil), out...)
}

// Close flushes and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file = nil
	return err
}

// ReadFile reads the events of a JSON-lines file written by a Log.
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ReadAll reads the events of a file written by a Log and of its rotated files, oldest
// first (path.N ... path.1, then path). Missing rotated files are skipped.
func ReadAll(path string) ([]Event, error) {
	var files []string
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(name); err != nil {
			break
		}
		files = append([]string{name}, files...)
	}
	files = append(files, path)
	var out []Event
	for _, f := range files {
		evs, err := ReadFile(f)
		out = append(out, evs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
