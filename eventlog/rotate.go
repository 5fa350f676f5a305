package eventlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Rotation bounds a file by size: once a write would take it past MaxBytes, the file is
// renamed <name>.1 (the previous <name>.1 becoming <name>.2, and so on), at most Backups
// rotated files are kept, and writing goes on in a new, empty file. MaxBytes <= 0 never
// rotates. The daemon sets it from log-rotate-max-size (MB) and log-rotate-max-backup.
type Rotation struct {
	MaxBytes int64
	Backups  int
}

// DefaultRotation is the one of the configuration's defaults (5 MB, 7 files kept).
var DefaultRotation = Rotation{MaxBytes: 5 << 20, Backups: 7}

// RotationMB is a Rotation from the configuration's units (megabytes).
func RotationMB(maxMB, backups int) Rotation {
	return Rotation{MaxBytes: int64(maxMB) << 20, Backups: backups}
}

// RotatingFile is an append-only file rotated by size (see Rotation); each Write lands
// whole in one file, so a line written at once is never split between two files. Safe for
// concurrent use. It serves the event log and the daemon's log-file.
type RotatingFile struct {
	path string
	rot  Rotation

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens (creating it and its directory if needed) path for appending.
func OpenRotating(path string, rot Rotation) (*RotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	r := &RotatingFile{path: path, rot: rot}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past MaxBytes (a p larger
// than MaxBytes goes whole into a fresh file).
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	var rotErr error
	if r.rot.MaxBytes > 0 && r.size > 0 && r.size+int64(len(p)) > r.rot.MaxBytes {
		rotErr = r.rotate()
		if r.f == nil {
			return 0, rotErr
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if err == nil {
		err = rotErr
	}
	return n, err
}

// rotate shifts the rotated files, renames the current one to .1 and opens a new one. On
// a rename failure writing goes on in the current file (and the error is returned).
func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return r.reopen(fmt.Errorf("rotate %s: %w", r.path, err))
	}
	r.f = nil
	r.removeBeyond(r.rot.Backups)
	if r.rot.Backups <= 0 {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return r.reopen(fmt.Errorf("rotate %s: %w", r.path, err))
		}
		return r.reopen(nil)
	}
	for i := r.rot.Backups - 1; i >= 1; i-- {
		if err := os.Rename(r.backup(i), r.backup(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return r.reopen(fmt.Errorf("rotate %s: %w", r.path, err))
		}
	}
	if err := os.Rename(r.path, r.backup(1)); err != nil {
		return r.reopen(fmt.Errorf("rotate %s: %w", r.path, err))
	}
	return r.reopen(nil)
}

func (r *RotatingFile) reopen(cause error) error {
	if err := r.open(); err != nil {
		return errors.Join(cause, fmt.Errorf("reopen %s: %w", r.path, err))
	}
	return cause
}

func (r *RotatingFile) backup(i int) string { return r.path + "." + strconv.Itoa(i) }

// removeBeyond deletes rotated files numbered above keep (left by a larger setting).
func (r *RotatingFile) removeBeyond(keep int) {
	matches, _ := filepath.Glob(globEscape(r.path) + ".*")
	for _, m := range matches {
		n, err := strconv.Atoi(strings.TrimPrefix(m, r.path+"."))
		if err == nil && n > keep && n >= 1 {
			os.Remove(m)
		}
	}
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(s)
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
