package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"replication-manager-pro/ipv6"
)

// PhysicalOptions say how to take a physical backup of a server whose data directory is on
// this machine (prov-orchestrator local, or on-premise servers on this host).
type PhysicalOptions struct {
	Binary  string // mariadb-backup; "" finds mariadb-backup or mariabackup in PATH
	Server  ipv6.HostPort
	DataDir string // the server's datadir (@@datadir)
	Creds   Credentials
	TmpDir  string // scratch for mariadb-backup's --target-dir; "" = system temp
}

// TakePhysical streams a mariadb-backup of the server into the store. The stream is checked
// chunk by chunk as it arrives, and the GTID position at which the backup is consistent is
// read from its binlog info.
func TakePhysical(ctx context.Context, st *Store, o PhysicalOptions) (Meta, error) {
	bin, err := FindTool(o.Binary, "mariadb-backup", "mariadb-backup", "mariabackup")
	if err != nil {
		return Meta{}, err
	}
	if o.DataDir == "" {
		return Meta{}, fmt.Errorf("physical backup of %s: the server's datadir is unknown", o.Server)
	}
	p, err := st.Begin(Physical, o.Server.String(), "mariabackup")
	if err != nil {
		return Meta{}, err
	}
	info, err := streamPhysical(ctx, bin, o, p)
	if err != nil {
		p.Abort()
		return Meta{}, fmt.Errorf("physical backup of %s: %w", o.Server, err)
	}
	g, ok := binlogGTID(info.Small)
	if !ok {
		p.Abort()
		return Meta{}, fmt.Errorf("physical backup of %s: the stream holds no binlog position (xtrabackup_binlog_info)", o.Server)
	}
	return p.Commit(func(m *Meta) { m.GTID, m.Files, m.Origin = g, info.Files, "local" })
}

// PhysicalStream runs mariadb-backup and writes its checked stream to w (a backup file, a
// socket to a partition, an extraction). It returns what the stream held.
func PhysicalStream(ctx context.Context, o PhysicalOptions, w io.Writer) (StreamInfo, error) {
	bin, err := FindTool(o.Binary, "mariadb-backup", "mariadb-backup", "mariabackup")
	if err != nil {
		return StreamInfo{}, err
	}
	return streamPhysical(ctx, bin, o, w)
}

func streamPhysical(ctx context.Context, bin string, o PhysicalOptions, w io.Writer) (StreamInfo, error) {
	scratch, err := os.MkdirTemp(scratchDir(o.TmpDir), ".rmp-mariabackup-*")
	if err != nil {
		return StreamInfo{}, err
	}
	defer os.RemoveAll(scratch)
	cnf, remove, err := optionFile(scratch, o.Creds, "client", "mariabackup")
	if err != nil {
		return StreamInfo{}, err
	}
	defer remove()
	args := []string{"--defaults-file=" + cnf, "--backup", "--stream=xbstream",
		"--target-dir=" + scratch, "--datadir=" + o.DataDir,
		"--host=" + ipv6.Unbracket(o.Server.Host), "--port=" + strconv.Itoa(o.Server.Port), "--protocol=TCP"}
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := newTail(8 << 10)
	cmd.Stderr = stderr
	cmd.Dir = scratch
	out, err := cmd.StdoutPipe()
	if err != nil {
		return StreamInfo{}, err
	}
	if err := cmd.Start(); err != nil {
		return StreamInfo{}, fmt.Errorf("start %s: %w", bin, err)
	}
	info, rerr := ReadStream(io.TeeReader(out, w), nil)
	if rerr != nil {
		cmd.Process.Kill()
	}
	io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if rerr != nil && ctx.Err() == nil {
		return info, rerr // the stream's own fault or its writer's (a full disk): mariadb-backup was killed for it
	}
	if werr != nil {
		return info, runErr(ctx, bin, werr, stderr.String())
	}
	return info, rerr
}

// PrepareOptions say how to turn a physical backup into a data directory.
type PrepareOptions struct {
	Binary string // mariadb-backup
	TmpDir string
}

// RestorePhysical extracts a physical backup (an xbstream) into dir, which must not exist
// or be empty, and prepares it with mariadb-backup --prepare: dir is then a data directory
// mariadbd starts on, at the backup's GTID position (returned, from the stream).
func RestorePhysical(ctx context.Context, r io.Reader, dir string, o PrepareOptions) (string, error) {
	bin, err := FindTool(o.Binary, "mariadb-backup", "mariadb-backup", "mariabackup")
	if err != nil {
		return "", err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return "", fmt.Errorf("restore into %s: the directory is not empty", dir)
	}
	info, err := Extract(r, dir)
	if err != nil {
		return "", fmt.Errorf("restore into %s: %w", dir, err)
	}
	g, ok := binlogGTID(info.Small)
	if !ok {
		return "", fmt.Errorf("restore into %s: the backup holds no binlog position", dir)
	}
	if err := Prepare(ctx, bin, dir); err != nil {
		return "", err
	}
	return g, nil
}

// Prepare applies the redo log of an extracted physical backup (mariadb-backup --prepare).
func Prepare(ctx context.Context, bin, dir string) error {
	cmd := exec.CommandContext(ctx, bin, "--no-defaults", "--prepare", "--target-dir="+dir)
	stderr := newTail(8 << 10)
	cmd.Stderr, cmd.Stdout = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("prepare %s: %w", dir, runErr(ctx, bin, err, stderr.String()))
	}
	return nil
}

// SwapDataDir replaces a stopped server's data directory by a restored one: the old one is
// kept as <datadir>.old-<suffix> until the caller removes it (RemoveOld), so a failed
// start can go back.
func SwapDataDir(datadir, restored, suffix string) (old string, err error) {
	old = datadir + ".old-" + suffix
	if _, err := os.Stat(datadir); err == nil {
		if err := os.Rename(datadir, old); err != nil {
			return "", fmt.Errorf("swap %s: %w", datadir, err)
		}
	} else {
		old = ""
	}
	if err := os.Rename(restored, datadir); err != nil {
		if old != "" {
			os.Rename(old, datadir)
		}
		return "", fmt.Errorf("swap %s: %w", datadir, err)
	}
	return old, nil
}

// StagingDir is where a restore for datadir is extracted: next to it, on the same file
// system, so the swap is a rename.
func StagingDir(datadir, suffix string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(datadir)), "."+filepath.Base(filepath.Clean(datadir))+".restore-"+suffix)
}

// StorePhysicalStream stores a physical backup that another party streams (a partition
// running mariadb-backup under the jobs protocol): feed writes the stream to the writer it
// gets; the stream is checked chunk by chunk, and a defective one is not stored.
func StorePhysicalStream(st *Store, server, origin string, feed func(w io.Writer) error) (Meta, error) {
	p, err := st.Begin(Physical, server, "mariabackup")
	if err != nil {
		return Meta{}, err
	}
	pr, pw := io.Pipe()
	type result struct {
		info StreamInfo
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		info, err := ReadStream(io.TeeReader(pr, p), nil)
		pr.CloseWithError(err)
		io.Copy(io.Discard, pr)
		ch <- result{info, err}
	}()
	ferr := feed(pw)
	pw.CloseWithError(ferr)
	r := <-ch
	if ferr != nil || r.err != nil {
		p.Abort()
		if ferr != nil {
			// The stream reader saw the feed's error as a cut stream: the feed says why.
			return Meta{}, fmt.Errorf("physical backup of %s: %w", server, ferr)
		}
		return Meta{}, fmt.Errorf("physical backup of %s: %w", server, r.err)
	}
	g, ok := binlogGTID(r.info.Small)
	if !ok {
		p.Abort()
		return Meta{}, fmt.Errorf("physical backup of %s: the stream holds no binlog position", server)
	}
	return p.Commit(func(m *Meta) { m.GTID, m.Files, m.Origin = g, r.info.Files, origin })
}
