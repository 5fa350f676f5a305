// Package backup takes, stores, checks, archives and restores backups of MariaDB servers:
// physical ones with mariadb-backup (xbstream), logical ones with mariadb-dump (gzip SQL).
// Each backup lives in its own directory of the cluster's backup store with a metadata
// file (server, kind, GTID position, size, SHA-256, duration); with backup-restic it is
// also archived in a restic repository, from which it can be listed and restored.
//
// The package runs programs (mariadb-backup, mariadb-dump, the mariadb client, restic) and
// never holds SQL of its own beyond what those programs run: the statements a reseed needs
// are in package mariadb. Credentials reach the programs through option files and
// password files created 0600 and removed afterwards, never through arguments or logs.
package backup

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Kind is a backup's method.
type Kind string

const (
	Physical Kind = "physical" // mariadb-backup --stream=xbstream
	Logical  Kind = "logical"  // mariadb-dump, gzip
)

// File names of a backup's data inside its directory.
const (
	PhysicalFile = "backup.xbstream"
	LogicalFile  = "backup.sql.gz"
	metaFile     = "meta.json"
)

// Meta describes one stored backup.
type Meta struct {
	ID       string        `json:"id"`
	Cluster  string        `json:"cluster"`
	Server   string        `json:"server"` // host:port of the server it was taken from
	Kind     Kind          `json:"kind"`
	Tool     string        `json:"tool"` // mariabackup, mysqldump
	File     string        `json:"file"` // data file name inside the backup's directory
	Size     int64         `json:"size"`
	SHA256   string        `json:"sha256"`
	GTID     string        `json:"gtid"` // the server's GTID position the data is at
	Files    int           `json:"files,omitempty"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Duration time.Duration `json:"durationNs"`
	Origin   string        `json:"origin,omitempty"` // "local" (taken by the manager) or "job" (streamed by a partition)
	Restic   string        `json:"restic,omitempty"` // restic snapshot id, once archived
}

// Store is a cluster's backup directory: one subdirectory per backup, named by its id.
// Backups are written in a hidden temporary directory and renamed into place once
// complete, so a failed or interrupted backup never shows up, nor harms an older one.
type Store struct {
	Dir     string
	Cluster string
}

// OpenStore returns the store in dir, creating it.
func OpenStore(dir, cluster string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("backup store: no directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("backup store: %w", err)
	}
	return &Store{Dir: dir, Cluster: cluster}, nil
}

// NewID returns a new backup id: its UTC time (sortable) and a random suffix.
func NewID(kind Kind, t time.Time) string {
	var r [3]byte
	rand.Read(r[:])
	return t.UTC().Format("20060102T150405.000Z") + "-" + string(kind) + "-" + hex.EncodeToString(r[:])
}

// ValidID reports whether id can name a backup directory (no path separator, no dot
// prefix): ids reach the store from API requests.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 || strings.HasPrefix(id, ".") {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// Pending is a backup being written. Write its data, then Commit or Abort.
type Pending struct {
	store *Store
	meta  Meta
	dir   string
	f     *os.File
	h     hash.Hash
	n     int64
}

// Begin starts a backup of kind from server; the data goes to Write.
func (s *Store) Begin(kind Kind, server, tool string) (*Pending, error) {
	start := time.Now()
	m := Meta{ID: NewID(kind, start), Cluster: s.Cluster, Server: server, Kind: kind, Tool: tool, Start: start}
	m.File = PhysicalFile
	if kind == Logical {
		m.File = LogicalFile
	}
	dir := filepath.Join(s.Dir, ".tmp-"+m.ID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, m.File), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	return &Pending{store: s, meta: m, dir: dir, f: f, h: sha256.New()}, nil
}

// ID returns the pending backup's id.
func (p *Pending) ID() string { return p.meta.ID }

// Write stores data and hashes it.
func (p *Pending) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write backup %s: %w", p.meta.ID, err)
	}
	return n, nil
}

// Written returns the bytes written so far.
func (p *Pending) Written() int64 { return p.n }

// Abort removes the pending backup.
func (p *Pending) Abort() {
	p.f.Close()
	os.RemoveAll(p.dir)
}

// Commit completes the backup: the data is synced, the metadata written (fill sets what
// only the caller knows: GTID, file count, origin) and the directory renamed into place.
func (p *Pending) Commit(fill func(*Meta)) (Meta, error) {
	m := p.meta
	if err := p.f.Sync(); err != nil {
		p.Abort()
		return m, fmt.Errorf("backup %s: sync: %w", m.ID, err)
	}
	if err := p.f.Close(); err != nil {
		p.Abort()
		return m, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	m.Size = p.n
	m.SHA256 = hex.EncodeToString(p.h.Sum(nil))
	m.End = time.Now()
	m.Duration = m.End.Sub(m.Start)
	if fill != nil {
		fill(&m)
	}
	if err := writeMeta(p.dir, m); err != nil {
		p.Abort()
		return m, err
	}
	if err := os.Rename(p.dir, filepath.Join(p.store.Dir, m.ID)); err != nil {
		p.Abort()
		return m, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	return m, nil
}

func writeMeta(dir string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("backup %s: metadata: %w", m.ID, err)
	}
	return os.Rename(tmp, filepath.Join(dir, metaFile))
}

// Update rewrites a stored backup's metadata (the restic snapshot id once archived).
func (s *Store) Update(m Meta) error {
	if !ValidID(m.ID) {
		return fmt.Errorf("backup id %q invalid", m.ID)
	}
	return writeMeta(filepath.Join(s.Dir, m.ID), m)
}

// Add stores a backup from a file already complete (a restic restore): it is moved in.
func (s *Store) Add(m Meta, data string) error {
	if !ValidID(m.ID) {
		return fmt.Errorf("backup id %q invalid", m.ID)
	}
	tmp := filepath.Join(s.Dir, ".tmp-"+m.ID)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	if err := os.Rename(data, filepath.Join(tmp, m.File)); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := writeMeta(tmp, m); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, filepath.Join(s.Dir, m.ID))
}

// List returns the stored backups, newest first. Directories without readable metadata
// are skipped.
func (s *Store) List() ([]Meta, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("backup store: %w", err)
	}
	var out []Meta
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if m, err := s.Get(e.Name()); err == nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out, nil
}

// Get returns one backup's metadata.
func (s *Store) Get(id string) (Meta, error) {
	if !ValidID(id) {
		return Meta{}, fmt.Errorf("backup id %q invalid", id)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, id, metaFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Meta{}, fmt.Errorf("backup %s: %w", id, ErrNotFound)
		}
		return Meta{}, fmt.Errorf("backup %s: %w", id, err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("backup %s: metadata: %w", id, err)
	}
	return m, nil
}

// ErrNotFound is wrapped when a backup id is not in the store.
var ErrNotFound = errors.New("no such backup")

// Path returns the data file of a stored backup.
func (s *Store) Path(m Meta) string { return filepath.Join(s.Dir, m.ID, m.File) }

// Dir returns a stored backup's directory (what restic archives).
func (s *Store) BackupDir(id string) string { return filepath.Join(s.Dir, id) }

// Open opens a stored backup's data after checking its size against the metadata.
func (s *Store) Open(m Meta) (*os.File, error) {
	f, err := os.Open(s.Path(m))
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", m.ID, err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != m.Size {
		f.Close()
		return nil, fmt.Errorf("backup %s: %w: data file is %d bytes, metadata says %d", m.ID, ErrCorruptStream, sizeOf(st), m.Size)
	}
	return f, nil
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// Remove deletes a stored backup.
func (s *Store) Remove(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("backup id %q invalid", id)
	}
	return os.RemoveAll(filepath.Join(s.Dir, id))
}

// Verify rereads a stored backup: its SHA-256 must match the metadata, and its content
// must be a complete stream (xbstream chunks and end markers, or a gzip SQL dump that
// mariadb-dump finished).
func (s *Store) Verify(m Meta) error {
	f, err := s.Open(m)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	r := io.TeeReader(f, h)
	switch m.Kind {
	case Physical:
		if _, err := ReadStream(r, nil); err != nil {
			return fmt.Errorf("backup %s: %w", m.ID, err)
		}
	case Logical:
		if err := checkDump(r); err != nil {
			return fmt.Errorf("backup %s: %w", m.ID, err)
		}
	default:
		return fmt.Errorf("backup %s: unknown kind %q", m.ID, m.Kind)
	}
	io.Copy(io.Discard, r)
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("backup %s: %w: SHA-256 %s, metadata says %s", m.ID, ErrCorruptStream, got, m.SHA256)
	}
	return nil
}

// Usable says whether a backup can seed a server: complete, with a known GTID position.
func Usable(m Meta) bool { return m.SHA256 != "" && m.Size > 0 && m.GTID != "" }
