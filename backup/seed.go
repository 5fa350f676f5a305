package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// Source is where a reseed takes a server's new data: a stored backup, or a donor server
// whose data is streamed for the occasion (and kept as a new backup).
type Source struct {
	Backup string `json:"backup,omitempty"` // a stored backup's id
	Kind   Kind   `json:"kind"`
	Donor  string `json:"donor,omitempty"` // host:port of a healthy server to stream from
	GTID   string `json:"gtid,omitempty"`  // the backup's position, when known at decision time
	// RequireEmpty refuses to overwrite a server holding user databases (autoseed: only an
	// empty server is seeded without anyone asking).
	RequireEmpty bool `json:"requireEmpty,omitempty"`
}

func (s Source) String() string {
	if s.Backup != "" {
		return fmt.Sprintf("%s backup %s", s.Kind, s.Backup)
	}
	return fmt.Sprintf("%s stream from %s", s.Kind, s.Donor)
}

// Node is one server whose process the manager controls (the local orchestrator's child
// processes, a test's servers): a physical restore stops it, swaps its data directory and
// starts it again.
type Node interface {
	DataDir() string
	Stop(ctx context.Context) error
	Start(ctx context.Context) error
}

// Sender streams a backup to a server's partition under a job of the original's protocol
// and returns the job's result text.
type Sender interface {
	Send(ctx context.Context, server ipv6.HostPort, task string, r io.Reader) (string, error)
}

// Seeder replaces servers' data from the store or from a donor: the data side of a reseed
// plan (package cluster decides the plan; this runs its restore step).
type Seeder struct {
	Store  *Store
	Restic *Restic // when set, a backup missing locally is fetched from restic
	Creds  Credentials
	// Node returns the process control of a server, nil when the manager has none (then
	// only logical restores are possible into it).
	Node func(addr ipv6.HostPort) Node
	// LocalDataDir returns a server's data directory when it is on this machine ("" if
	// not): a physical stream can be taken from it.
	LocalDataDir func(ctx context.Context, addr ipv6.HostPort) string
	// Remote sends a physical backup to a server's partition for a reseed (the jobs
	// protocol, package jobs), for servers whose process the manager does not control.
	Remote                    Sender
	Mariabackup, Dump, Client string // program paths; "" finds them in PATH
	TmpDir                    string
	Timeout                   time.Duration // bound of one restore; 0 = 1 hour
}

// Backups lists the stored backups, newest first.
func (s *Seeder) Backups() ([]Meta, error) { return s.Store.List() }

// CanRestorePhysical reports whether a physical backup can be restored into target.
func (s *Seeder) CanRestorePhysical(target ipv6.HostPort) bool {
	return (s.Node != nil && s.Node(target) != nil) || s.Remote != nil
}

// CanStreamPhysical reports whether a physical stream can be taken from donor.
func (s *Seeder) CanStreamPhysical(ctx context.Context, donor ipv6.HostPort) bool {
	return s.LocalDataDir != nil && s.LocalDataDir(ctx, donor) != ""
}

func (s *Seeder) open(addr ipv6.HostPort) (*mariadb.Server, error) {
	return mariadb.Open(addr, s.Creds.User, s.Creds.Password, mariadb.Options{ReadTimeout: 10 * time.Minute, WriteTimeout: 10 * time.Minute})
}

// Restore replaces target's data from src and returns the GTID position the data is at.
// A stored backup is verified (checksum and completeness) before the target is touched;
// a failed restore leaves a physical target's previous data directory in place.
func (s *Seeder) Restore(ctx context.Context, target ipv6.HostPort, src Source) (string, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if src.Backup != "" {
		m, err := s.stored(ctx, src.Backup)
		if err != nil {
			return "", err
		}
		if err := s.Store.Verify(m); err != nil {
			return "", fmt.Errorf("reseed %s: %w (the backup is not usable)", target, err)
		}
		f, err := s.Store.Open(m)
		if err != nil {
			return "", err
		}
		defer f.Close()
		switch m.Kind {
		case Physical:
			_, err = s.restorePhysical(ctx, target, f)
		case Logical:
			err = s.load(ctx, target, f)
		default:
			err = fmt.Errorf("unknown backup kind %q", m.Kind)
		}
		if err != nil {
			return "", fmt.Errorf("reseed %s from backup %s: %w", target, m.ID, err)
		}
		return m.GTID, nil
	}
	donor, err := ipv6.ParseHostPort(src.Donor, ipv6.DefaultPort)
	if err != nil {
		return "", fmt.Errorf("reseed %s: donor %q: %w", target, src.Donor, err)
	}
	g, err := s.stream(ctx, target, donor, src.Kind)
	if err != nil {
		return "", fmt.Errorf("reseed %s from %s: %w", target, donor, err)
	}
	return g, nil
}

// stored returns a backup's metadata, fetching it from restic when it is not local.
func (s *Seeder) stored(ctx context.Context, id string) (Meta, error) {
	m, err := s.Store.Get(id)
	if err == nil || s.Restic == nil || !errors.Is(err, ErrNotFound) {
		return m, err
	}
	snaps, rerr := s.Restic.Snapshots(ctx, s.Store.Cluster)
	if rerr != nil {
		return Meta{}, fmt.Errorf("%w; restic: %v", err, rerr)
	}
	for _, sn := range snaps {
		if sn.Backup == id {
			return s.Restic.Fetch(ctx, s.Store, sn)
		}
	}
	return Meta{}, err
}

// restorePhysical extracts and prepares a stream next to the target's data directory while
// the server still runs, then stops it, swaps the directories and starts it.
func (s *Seeder) restorePhysical(ctx context.Context, target ipv6.HostPort, r io.Reader) (string, error) {
	node := s.nodeOf(target)
	if node == nil && s.Remote != nil {
		// The partition's result text is free-form (its tools' output): whether the data
		// took is judged by the replication that follows.
		if _, err := s.Remote.Send(ctx, target, "reseedmariabackup", r); err != nil {
			return "", err
		}
		return "", nil // its position is the backup's
	}
	if node == nil {
		return "", fmt.Errorf("physical restore into %s: the manager does not control its process", target)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	stage := StagingDir(node.DataDir(), suffix)
	defer os.RemoveAll(stage)
	g, err := RestorePhysical(ctx, r, stage, PrepareOptions{Binary: s.Mariabackup, TmpDir: s.TmpDir})
	if err != nil {
		return "", err
	}
	if err := node.Stop(ctx); err != nil {
		return "", fmt.Errorf("stop %s: %w", target, err)
	}
	old, err := SwapDataDir(node.DataDir(), stage, suffix)
	if err != nil {
		node.Start(ctx)
		return "", err
	}
	if err := node.Start(ctx); err != nil {
		// Back to the data it had: the reseed failed, the server must not stay down.
		if old != "" {
			os.RemoveAll(node.DataDir())
			os.Rename(old, node.DataDir())
			node.Start(ctx)
		}
		return "", fmt.Errorf("start %s on the restored data: %w", target, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return g, nil
}

func (s *Seeder) nodeOf(target ipv6.HostPort) Node {
	if s.Node == nil {
		return nil
	}
	return s.Node(target)
}

// load empties the target (user databases dropped, binary log reset, both outside the
// binary log) and loads a gzip dump into it.
func (s *Seeder) load(ctx context.Context, target ipv6.HostPort, r io.Reader) error {
	srv, err := s.open(target)
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := srv.DropUserDatabases(ctx); err != nil {
		return err
	}
	if err := srv.ResetBinaryLog(ctx); err != nil {
		return err
	}
	return LoadLogical(ctx, r, LoadOptions{Binary: s.Client, Server: target, Creds: s.Creds, TmpDir: s.TmpDir})
}

// stream takes a fresh backup of the donor and restores it into the target in the same
// pass; the stream is also stored as a new backup of the donor.
func (s *Seeder) stream(ctx context.Context, target, donor ipv6.HostPort, kind Kind) (string, error) {
	tool := "mysqldump"
	if kind == Physical {
		tool = "mariabackup"
	}
	p, err := s.Store.Begin(kind, donor.String(), tool)
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var restored string
	go func() {
		var err error
		if kind == Physical {
			restored, err = s.restorePhysical(ctx, target, pr)
		} else {
			err = s.load(ctx, target, pr)
		}
		pr.CloseWithError(err) // unblocks the writer if the restore stopped early
		io.Copy(io.Discard, pr)
		done <- err
	}()
	var g string
	var files int
	if kind == Physical {
		dd := ""
		if s.LocalDataDir != nil {
			dd = s.LocalDataDir(ctx, donor)
		}
		var info StreamInfo
		info, err = PhysicalStream(ctx, PhysicalOptions{Binary: s.Mariabackup, Server: donor, DataDir: dd, Creds: s.Creds, TmpDir: s.TmpDir}, io.MultiWriter(p, pw))
		if err == nil {
			var ok bool
			if g, ok = binlogGTID(info.Small); !ok {
				err = errors.New("the stream holds no binlog position")
			}
			files = info.Files
		}
	} else {
		g, err = LogicalStream(ctx, LogicalOptions{Binary: s.Dump, Server: donor, Creds: s.Creds, TmpDir: s.TmpDir}, io.MultiWriter(p, pw))
	}
	pw.CloseWithError(err)
	rerr := <-done
	if err != nil || rerr != nil {
		p.Abort()
		return "", errors.Join(err, rerr)
	}
	if kind == Physical && restored != "" && restored != g {
		p.Abort()
		return "", fmt.Errorf("restored position %s differs from the stream's %s", restored, g)
	}
	if _, err := p.Commit(func(m *Meta) { m.GTID, m.Files, m.Origin = g, files, "reseed" }); err != nil {
		// The target is seeded; only the copy kept as a backup was lost.
		return g, nil
	}
	return g, nil
}
