package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"replication-manager-pro/ipv6"
)

// LogicalOptions say how to take a logical backup over the network.
type LogicalOptions struct {
	Binary  string // mariadb-dump; "" finds mariadb-dump or mysqldump in PATH
	Server  ipv6.HostPort
	Creds   Credentials
	Options []string // extra mariadb-dump options (backup-mysqldump-options)
	TmpDir  string
}

// dumpArgs are the options of every logical backup: one consistent snapshot of all
// databases with routines, triggers and events, and the GTID position of that snapshot
// written as a comment (--gtid --master-data=2).
var dumpArgs = []string{"--all-databases", "--single-transaction", "--gtid", "--master-data=2",
	"--routines", "--triggers", "--events", "--hex-blob", "--ignore-table=mysql.gtid_slave_pos"}

var gtidLine = regexp.MustCompile(`gtid_slave_pos\s*=\s*'([^']*)'`)

// dumpDone is how mariadb-dump ends a dump it completed.
var dumpDone = []byte("-- Dump completed")

// TakeLogical runs mariadb-dump against the server and stores its gzip-compressed output.
func TakeLogical(ctx context.Context, st *Store, o LogicalOptions) (Meta, error) {
	bin, err := FindTool(o.Binary, "mariadb-client", "mariadb-dump", "mysqldump")
	if err != nil {
		return Meta{}, err
	}
	p, err := st.Begin(Logical, o.Server.String(), "mysqldump")
	if err != nil {
		return Meta{}, err
	}
	g, err := dumpTo(ctx, bin, o, p)
	if err != nil {
		p.Abort()
		return Meta{}, fmt.Errorf("logical backup of %s: %w", o.Server, err)
	}
	return p.Commit(func(m *Meta) { m.GTID, m.Origin = g, "local" })
}

// LogicalStream writes a gzip-compressed dump of the server to w and returns its GTID.
func LogicalStream(ctx context.Context, o LogicalOptions, w io.Writer) (string, error) {
	bin, err := FindTool(o.Binary, "mariadb-client", "mariadb-dump", "mysqldump")
	if err != nil {
		return "", err
	}
	return dumpTo(ctx, bin, o, w)
}

func dumpTo(ctx context.Context, bin string, o LogicalOptions, w io.Writer) (string, error) {
	cnf, remove, err := optionFile(scratchDir(o.TmpDir), o.Creds, "client", "mysqldump", "mariadb-dump")
	if err != nil {
		return "", err
	}
	defer remove()
	args := append([]string{"--defaults-file=" + cnf, "--host=" + ipv6.Unbracket(o.Server.Host),
		"--port=" + strconv.Itoa(o.Server.Port), "--protocol=TCP"}, dumpArgs...)
	args = append(args, o.Options...)
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := newTail(8 << 10)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	sn := &sniffer{}
	_, cerr := io.Copy(zw, io.TeeReader(out, sn))
	if cerr != nil {
		cmd.Process.Kill()
		io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	if werr != nil {
		return "", runErr(ctx, bin, werr, stderr.String())
	}
	if cerr != nil {
		return "", cerr
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if !bytes.Contains(sn.tail, dumpDone) {
		return "", errors.New("mariadb-dump ended without completing the dump")
	}
	if sn.gtid == nil {
		return "", errors.New("the dump holds no GTID position (gtid_slave_pos): is the binary log on?")
	}
	return *sn.gtid, nil
}

// sniffer finds the GTID comment near the start of a dump and keeps its last bytes.
type sniffer struct {
	head []byte
	tail []byte
	gtid *string
}

func (s *sniffer) Write(p []byte) (int, error) {
	if s.gtid == nil && len(s.head) < 1<<20 {
		s.head = append(s.head, p...)
		if m := gtidLine.FindSubmatch(s.head); m != nil {
			g := string(m[1])
			s.gtid, s.head = &g, nil
		}
	}
	s.tail = append(s.tail, p...)
	if len(s.tail) > 512 {
		s.tail = s.tail[len(s.tail)-512:]
	}
	return len(p), nil
}

// checkDump reads a gzip SQL dump to its end: the gzip must be intact and the dump
// completed.
func checkDump(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptStream, err)
	}
	sn := &sniffer{}
	if _, err := io.Copy(sn, zr); err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptStream, err)
	}
	if !bytes.Contains(sn.tail, dumpDone) {
		return fmt.Errorf("%w: the dump is not complete (no %q at its end)", ErrCorruptStream, dumpDone)
	}
	return nil
}

// DumpGTID reads the GTID position of a gzip SQL dump from its header.
func DumpGTID(r io.Reader) (string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrCorruptStream, err)
	}
	br := bufio.NewReader(io.LimitReader(zr, 1<<20))
	for {
		line, err := br.ReadString('\n')
		if m := gtidLine.FindStringSubmatch(line); m != nil {
			return m[1], nil
		}
		if err != nil {
			return "", errors.New("the dump holds no GTID position")
		}
	}
}

// LoadOptions say how to load a logical backup into a server.
type LoadOptions struct {
	Binary string // the mariadb client; "" finds mariadb or mysql in PATH
	Server ipv6.HostPort
	Creds  Credentials
	TmpDir string
}

// LoadPrefix is sent before a dump that is loaded into a replica: the statements must not
// enter its binary log, or they would become transactions the master never had.
const LoadPrefix = "SET SESSION sql_log_bin=0;\n"

// LoadLogical feeds a gzip SQL dump to the server with the mariadb client, outside the
// binary log (LoadPrefix). It checks the dump is complete and intact before its end
// reaches the server's last statements; a corrupt dump fails with ErrCorruptStream.
func LoadLogical(ctx context.Context, r io.Reader, o LoadOptions) error {
	bin, err := FindTool(o.Binary, "mariadb-client", "mariadb", "mysql")
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("load into %s: %w: %v", o.Server, ErrCorruptStream, err)
	}
	cnf, remove, err := optionFile(scratchDir(o.TmpDir), o.Creds, "client", "mariadb", "mysql")
	if err != nil {
		return err
	}
	defer remove()
	cmd := exec.CommandContext(ctx, bin, "--defaults-file="+cnf, "--host="+ipv6.Unbracket(o.Server.Host),
		"--port="+strconv.Itoa(o.Server.Port), "--protocol=TCP", "--max-allowed-packet=1G", "--batch")
	stderr := newTail(8 << 10)
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	sn := &sniffer{}
	_, cerr := io.Copy(in, io.MultiReader(strings.NewReader(LoadPrefix), io.TeeReader(zr, sn)))
	if cerr == nil && !bytes.Contains(sn.tail, dumpDone) {
		cerr = fmt.Errorf("%w: the dump is not complete", ErrCorruptStream)
	}
	if cerr != nil {
		// Do not let the client commit what it has: kill it before it reads EOF.
		cmd.Process.Kill()
		in.Close()
		cmd.Wait()
		if !errors.Is(cerr, ErrCorruptStream) {
			cerr = fmt.Errorf("%w: %v", ErrCorruptStream, cerr)
		}
		return fmt.Errorf("load into %s: %w", o.Server, cerr)
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("load into %s: %w", o.Server, runErr(ctx, bin, err, stderr.String()))
	}
	return nil
}
