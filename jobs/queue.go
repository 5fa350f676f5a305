// Package jobs runs database jobs: a queue per server of typed jobs (backups, reseeds, log
// collection, optimize, start, stop, restart) with states, results and timings; and the
// protocol of replication-manager's replication_manager_schema.jobs table and receiver
// ports, by which a partition's dbjobs script streams backups to the manager and receives
// one for a reseed (Remote).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Kind is a job's type, named as the API's server actions name them.
type Kind string

const (
	BackupPhysical Kind = "backup-physical"
	BackupLogical  Kind = "backup-logical"
	ReseedPhysical Kind = "reseed-physicalbackup"
	ReseedLogical  Kind = "reseed-logicalbackup"
	ErrorLog       Kind = "error-log"
	SlowLog        Kind = "slow-log"
	Optimize       Kind = "optimize"
	Start          Kind = "start"
	Stop           Kind = "stop"
	Restart        Kind = "restart"
	// LogTables rotates the server's log tables (mysql.general_log, mysql.slow_log):
	// scheduler-db-servers-logs-table-rotate. The manager runs it itself over SQL.
	LogTables Kind = "logs-table-rotate"
)

// Kinds lists every kind.
var Kinds = []Kind{BackupPhysical, BackupLogical, ReseedPhysical, ReseedLogical, ErrorLog, SlowLog, Optimize, Start, Stop, Restart, LogTables}

// Task is the name the original's jobs table and dbjobs script use for a kind.
func (k Kind) Task() string {
	switch k {
	case BackupPhysical:
		return "mariabackup"
	case BackupLogical:
		return "mysqldump"
	case ReseedPhysical:
		return "reseedmariabackup"
	case ReseedLogical:
		return "reseedmysqldump"
	case ErrorLog:
		return "error"
	case SlowLog:
		return "slowquery"
	}
	return string(k)
}

// ParseKind accepts a kind or its task name.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if s == string(k) || s == k.Task() {
			return k, true
		}
	}
	return "", false
}

// State is where a job is.
type State string

const (
	Queued  State = "queued"
	Running State = "running"
	Done    State = "done"
	Failed  State = "failed"
)

// Job is one job of one server.
type Job struct {
	ID       int64         `json:"id"`
	Cluster  string        `json:"cluster"`
	Server   string        `json:"server"`
	Kind     Kind          `json:"kind"`
	Task     string        `json:"task"` // the original's task name
	State    State         `json:"state"`
	Origin   string        `json:"origin,omitempty"` // api, cli, scheduler, monitor
	Result   string        `json:"result,omitempty"`
	Error    string        `json:"error,omitempty"`
	Backup   string        `json:"backup,omitempty"` // the backup a job made or used
	Created  time.Time     `json:"created"`
	Started  time.Time     `json:"started,omitempty"`
	Ended    time.Time     `json:"ended,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
}

// Outcome is what a job's function reports.
type Outcome struct {
	Result string
	Backup string
}

// Func runs a job. It must end when ctx is done.
type Func func(ctx context.Context, j Job) (Outcome, error)

// ErrBusy is returned when the same kind of job is already queued or running on a server.
var ErrBusy = errors.New("a job of this kind is already queued or running on this server")

// Queue holds the jobs of one cluster: per server, one job runs at a time, in order. The
// history (the last KeepPerServer jobs of each server) is kept in a file, so a restarted
// manager still lists them; jobs that were queued or running then are marked failed.
type Queue struct {
	cluster string
	path    string
	log     *logrus.Entry
	keep    int

	mu      sync.Mutex
	nextID  int64
	jobs    []*Job
	pending map[string][]*pending // by server
	running map[string]*pending
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type pending struct {
	job    *Job
	run    Func
	cancel context.CancelFunc
}

// KeepPerServer is how many finished jobs of each server the history keeps.
const KeepPerServer = 50

// NewQueue opens the queue of a cluster; path is its history file ("" keeps none).
func NewQueue(cluster, path string, log *logrus.Entry) *Queue {
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{cluster: cluster, path: path, log: log.WithField("cluster", cluster), keep: KeepPerServer,
		pending: map[string][]*pending{}, running: map[string]*pending{}, ctx: ctx, stop: cancel}
	q.load()
	return q
}

func (q *Queue) load() {
	if q.path == "" {
		return
	}
	b, err := os.ReadFile(q.path)
	if err != nil {
		return
	}
	var jobs []*Job
	if json.Unmarshal(b, &jobs) != nil {
		return
	}
	for _, j := range jobs {
		if j.State == Queued || j.State == Running {
			j.State, j.Error = Failed, "the manager stopped before the job ended"
			if j.Ended.IsZero() {
				j.Ended = time.Now()
			}
		}
		if j.ID > q.nextID {
			q.nextID = j.ID
		}
	}
	q.jobs = jobs
}

// save writes the history; q.mu is held.
func (q *Queue) save() {
	if q.path == "" {
		return
	}
	// Trim: the last keep finished jobs per server, and every live one.
	count := map[string]int{}
	var kept []*Job
	for i := len(q.jobs) - 1; i >= 0; i-- {
		j := q.jobs[i]
		if j.State == Done || j.State == Failed {
			count[j.Server]++
			if count[j.Server] > q.keep {
				continue
			}
		}
		kept = append(kept, j)
	}
	for i, k := 0, len(kept)-1; i < k; i, k = i+1, k-1 {
		kept[i], kept[k] = kept[k], kept[i]
	}
	q.jobs = kept
	b, err := json.MarshalIndent(q.jobs, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(q.path), 0o750); err == nil {
		tmp := q.path + ".tmp"
		if os.WriteFile(tmp, b, 0o640) == nil {
			os.Rename(tmp, q.path)
		}
	}
}

// Enqueue adds a job for server and returns it (queued). The same kind of job already
// queued or running on that server refuses it with ErrBusy.
func (q *Queue) Enqueue(server string, kind Kind, origin string, run Func) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ctx.Err() != nil {
		return Job{}, errors.New("job queue closed")
	}
	busy := func(p *pending) bool { return p != nil && p.job.Kind == kind }
	if busy(q.running[server]) {
		return Job{}, fmt.Errorf("%s on %s: %w (job %d)", kind, server, ErrBusy, q.running[server].job.ID)
	}
	for _, p := range q.pending[server] {
		if busy(p) {
			return Job{}, fmt.Errorf("%s on %s: %w (job %d)", kind, server, ErrBusy, p.job.ID)
		}
	}
	q.nextID++
	j := &Job{ID: q.nextID, Cluster: q.cluster, Server: server, Kind: kind, Task: kind.Task(), State: Queued, Origin: origin, Created: time.Now()}
	q.jobs = append(q.jobs, j)
	q.pending[server] = append(q.pending[server], &pending{job: j, run: run})
	q.save()
	if q.running[server] == nil {
		q.startNext(server)
	}
	return *j, nil
}

// startNext starts the next queued job of server; q.mu is held.
func (q *Queue) startNext(server string) {
	l := q.pending[server]
	if len(l) == 0 {
		delete(q.running, server)
		return
	}
	p := l[0]
	q.pending[server] = l[1:]
	ctx, cancel := context.WithCancel(q.ctx)
	p.cancel = cancel
	q.running[server] = p
	p.job.State, p.job.Started = Running, time.Now()
	q.save()
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		defer cancel()
		j := *p.job
		log := q.log.WithFields(logrus.Fields{"server": j.Server, "job": j.ID, "kind": j.Kind})
		log.Info("job started")
		out, err := safeRun(ctx, p.run, j)
		q.mu.Lock()
		p.job.Ended = time.Now()
		p.job.Duration = p.job.Ended.Sub(p.job.Started)
		p.job.Result, p.job.Backup = out.Result, out.Backup
		if err != nil {
			p.job.State, p.job.Error = Failed, err.Error()
			log.WithError(err).Warn("job failed")
		} else {
			p.job.State = Done
			log.WithField("duration", p.job.Duration.Round(time.Millisecond)).Info("job done")
		}
		q.startNext(server)
		q.save()
		q.mu.Unlock()
	}()
}

func safeRun(ctx context.Context, f Func, j Job) (out Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job panicked: %v", r)
		}
	}()
	out, err = f(ctx, j)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.Canceled) {
		err = fmt.Errorf("canceled: %w", err)
	}
	return out, err
}

// Cancel ends a queued or running job: a running one has its context canceled (its
// programs are killed) and ends failed.
func (q *Queue) Cancel(id int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for server, p := range q.running {
		if p.job.ID == id {
			p.cancel()
			return nil
		}
		_ = server
	}
	for server, l := range q.pending {
		for i, p := range l {
			if p.job.ID == id {
				q.pending[server] = append(l[:i:i], l[i+1:]...)
				p.job.State, p.job.Error, p.job.Ended = Failed, "canceled before it started", time.Now()
				q.save()
				return nil
			}
		}
	}
	return fmt.Errorf("job %d is not queued nor running", id)
}

// CancelKinds cancels the queued and running jobs of server whose kind is in kinds (Cancel
// for each) and returns their ids.
func (q *Queue) CancelKinds(server string, kinds []Kind) []int64 {
	want := map[Kind]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	q.mu.Lock()
	var ids []int64
	if p := q.running[server]; p != nil && want[p.job.Kind] {
		ids = append(ids, p.job.ID)
	}
	for _, p := range q.pending[server] {
		if want[p.job.Kind] {
			ids = append(ids, p.job.ID)
		}
	}
	q.mu.Unlock()
	var out []int64
	for _, id := range ids {
		if q.Cancel(id) == nil { // one that ended meanwhile is not counted
			out = append(out, id)
		}
	}
	return out
}

// List returns the jobs of server ("" for every server), newest first.
func (q *Queue) List(server string) []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Job
	for _, j := range q.jobs {
		if server == "" || j.Server == server {
			out = append(out, *j)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID > out[b].ID })
	return out
}

// Get returns one job.
func (q *Queue) Get(id int64) (Job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range q.jobs {
		if j.ID == id {
			return *j, true
		}
	}
	return Job{}, false
}

// Wait waits until job id has ended (or ctx is done) and returns it.
func (q *Queue) Wait(ctx context.Context, id int64) (Job, error) {
	for {
		j, ok := q.Get(id)
		if !ok {
			return j, fmt.Errorf("no job %d", id)
		}
		if j.State == Done || j.State == Failed {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close cancels every job and waits for them.
func (q *Queue) Close() {
	q.stop()
	q.wg.Wait()
}
