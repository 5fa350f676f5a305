package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Restic archives stored backups in a restic repository (backup-restic). The password
// reaches restic through a 0600 password file (RESTIC_PASSWORD_FILE), never an argument.
type Restic struct {
	Binary     string   // backup-restic-binary-path
	Repository string   // backup-restic-repository
	Password   string   // backup-restic-password
	Env        []string // extra environment (AWS credentials of an S3 repository)
	TmpDir     string
	Keep       Keep // backup-keep-*
}

// Keep is a retention policy: how many hourly, daily, weekly, monthly and yearly backups
// stay (restic forget's --keep-* options; the local store applies the same rule).
type Keep struct {
	Hourly, Daily, Weekly, Monthly, Yearly int
}

// ErrWrongPassword is wrapped when restic cannot open the repository with the password.
var ErrWrongPassword = errors.New("restic: wrong repository password")

func (r *Restic) run(ctx context.Context, stdout io.Writer, args ...string) error {
	bin, err := FindTool(r.Binary, "restic", "restic")
	if err != nil {
		return err
	}
	if r.Repository == "" {
		return errors.New("restic: backup-restic-repository is empty")
	}
	if r.Password == "" {
		return errors.New("restic: backup-restic-password is empty")
	}
	pw, err := os.CreateTemp(scratchDir(r.TmpDir), ".rmp-restic-*")
	if err != nil {
		return fmt.Errorf("restic: password file: %w", err)
	}
	defer os.Remove(pw.Name())
	if err := pw.Chmod(0o600); err != nil {
		pw.Close()
		return err
	}
	_, werr := pw.WriteString(r.Password)
	if cerr := pw.Close(); werr != nil || cerr != nil {
		return fmt.Errorf("restic: password file: %v %v", werr, cerr)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	env := []string{"RESTIC_REPOSITORY=" + r.Repository, "RESTIC_PASSWORD_FILE=" + pw.Name(),
		"RESTIC_CACHE_DIR=" + filepath.Join(scratchDir(r.TmpDir), ".rmp-restic-cache"), "HOME=" + scratchDir(r.TmpDir)}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = append(env, r.Env...)
	stderr := newTail(8 << 10)
	cmd.Stderr = stderr
	if stdout == nil {
		stdout = io.Discard
	}
	cmd.Stdout = stdout
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if strings.Contains(msg, "wrong password") || strings.Contains(msg, "no key found") {
			return fmt.Errorf("%w (%s): %s", ErrWrongPassword, r.Repository, lastLines(msg, 2))
		}
		return fmt.Errorf("restic %s: %w", args[0], runErr(ctx, bin, err, msg))
	}
	return nil
}

// Init creates the repository unless it exists. A repository that exists but refuses the
// password is an ErrWrongPassword.
func (r *Restic) Init(ctx context.Context) error {
	err := r.run(ctx, nil, "cat", "config")
	if err == nil || errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrMissingTool) {
		return err
	}
	return r.run(ctx, nil, "init")
}

// Archive stores one backup's directory (data and metadata) in the repository, tagged
// with the cluster and the backup id, and returns the snapshot id.
func (r *Restic) Archive(ctx context.Context, st *Store, m Meta) (string, error) {
	if err := r.Init(ctx); err != nil {
		return "", err
	}
	var out bytes.Buffer
	dir := st.BackupDir(m.ID)
	if err := r.run(ctx, &out, "backup", "--json", "--host", "replication-manager-pro",
		"--tag", "cluster="+m.Cluster, "--tag", "backup="+m.ID, "--tag", "kind="+string(m.Kind), dir); err != nil {
		return "", err
	}
	var id string
	for _, line := range strings.Split(out.String(), "\n") {
		var s struct {
			MessageType string `json:"message_type"`
			SnapshotID  string `json:"snapshot_id"`
		}
		if json.Unmarshal([]byte(line), &s) == nil && s.MessageType == "summary" {
			id = s.SnapshotID
		}
	}
	if id == "" {
		return "", errors.New("restic backup: no snapshot id in its output")
	}
	return id, nil
}

// Snapshot is one archived backup.
type Snapshot struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Backup string    `json:"backup"` // the backup id (tag backup=)
	Kind   Kind      `json:"kind"`
	Path   string    `json:"path"` // the backup directory archived
}

// Snapshots lists the cluster's archived backups, newest first.
func (r *Restic) Snapshots(ctx context.Context, cluster string) ([]Snapshot, error) {
	var out bytes.Buffer
	if err := r.run(ctx, &out, "snapshots", "--json", "--tag", "cluster="+cluster); err != nil {
		return nil, err
	}
	var raw []struct {
		ID    string    `json:"id"`
		Time  time.Time `json:"time"`
		Paths []string  `json:"paths"`
		Tags  []string  `json:"tags"`
	}
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("restic snapshots: %w", err)
	}
	var snaps []Snapshot
	for _, s := range raw {
		sn := Snapshot{ID: s.ID, Time: s.Time}
		if len(s.Paths) > 0 {
			sn.Path = s.Paths[0]
		}
		for _, t := range s.Tags {
			if v, ok := strings.CutPrefix(t, "backup="); ok {
				sn.Backup = v
			}
			if v, ok := strings.CutPrefix(t, "kind="); ok {
				sn.Kind = Kind(v)
			}
		}
		if sn.Backup != "" {
			snaps = append(snaps, sn)
		}
	}
	for i, j := 0, len(snaps)-1; i < j; i, j = i+1, j-1 {
		snaps[i], snaps[j] = snaps[j], snaps[i]
	}
	return snaps, nil
}

// Fetch restores an archived backup into the store (its data and metadata), checks it
// against its metadata, and returns the metadata.
func (r *Restic) Fetch(ctx context.Context, st *Store, sn Snapshot) (Meta, error) {
	var mb bytes.Buffer
	if err := r.run(ctx, &mb, "dump", sn.ID, sn.Path+"/"+metaFile); err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(mb.Bytes(), &m); err != nil {
		return Meta{}, fmt.Errorf("restic snapshot %s: metadata: %w", sn.ID, err)
	}
	if !ValidID(m.ID) {
		return Meta{}, fmt.Errorf("restic snapshot %s: backup id %q invalid", sn.ID, m.ID)
	}
	f, err := os.CreateTemp(st.Dir, ".fetch-*")
	if err != nil {
		return Meta{}, err
	}
	defer os.Remove(f.Name())
	err = r.run(ctx, f, "dump", sn.ID, sn.Path+"/"+m.File)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Meta{}, err
	}
	m.Restic = sn.ID
	if existing, err := st.Get(m.ID); err == nil {
		m = existing
	} else if err := st.Add(m, f.Name()); err != nil {
		return Meta{}, err
	}
	if err := st.Verify(m); err != nil {
		return Meta{}, fmt.Errorf("restic snapshot %s: %w", sn.ID, err)
	}
	return m, nil
}

// Forget applies the retention policy to the cluster's snapshots and prunes the data
// they alone held.
func (r *Restic) Forget(ctx context.Context, cluster string) error {
	k := r.Keep
	if k == (Keep{}) {
		return nil
	}
	// One group per kind: a logical backup must not push out the last physical one.
	for _, kind := range []Kind{Physical, Logical} {
		if err := r.run(ctx, nil, "forget", "--prune", "--tag", "cluster="+cluster+",kind="+string(kind), "--group-by", "host",
			"--keep-hourly", strconv.Itoa(k.Hourly), "--keep-daily", strconv.Itoa(k.Daily),
			"--keep-weekly", strconv.Itoa(k.Weekly), "--keep-monthly", strconv.Itoa(k.Monthly),
			"--keep-yearly", strconv.Itoa(k.Yearly), "--keep-last", "1"); err != nil {
			return err
		}
	}
	return nil
}
