package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/configurator"
)

// Layout is where things live in a MariaDB partition, as SlapOS' repman software lays it
// out (instance-mariadb.cfg.jinja2.in) and the configurator's slapos paths expect.
type Layout struct{ Root string }

func (l Layout) EtcMySQL() string   { return filepath.Join(l.Root, "etc", "mysql") }
func (l Layout) MyCnf() string      { return filepath.Join(l.EtcMySQL(), "my.cnf") }
func (l Layout) DBJobCnf() string   { return filepath.Join(l.EtcMySQL(), "dbjob.cnf") }
func (l Layout) DataDir() string    { return filepath.Join(l.Root, "var", "lib", "mysql") }
func (l Layout) System() string     { return filepath.Join(l.DataDir(), ".system") }
func (l Layout) ConfigTmp() string  { return filepath.Join(l.Root, "tmp", "config") }
func (l Layout) Run() string        { return filepath.Join(l.Root, "var", "run") }
func (l Layout) PidFile() string    { return filepath.Join(l.Run(), "mariadb.pid") }
func (l Layout) Log() string        { return filepath.Join(l.Root, "var", "log") }
func (l Layout) StdoutLog() string  { return filepath.Join(l.Log(), "mariadb_stdout.log") }
func (l Layout) ErrorLog() string   { return filepath.Join(l.System(), "logs", "error.log") }
func (l Layout) StatusFile() string { return filepath.Join(l.Run(), "agent-status.json") }
func (l Layout) WantFile() string   { return filepath.Join(l.Run(), "agent-wanted") }
func (l Layout) LockFile() string   { return filepath.Join(l.Run(), "agent.lock") }

// Install unpacks a database bundle into the partition as SlapOS' mysqld-update-config
// does: the tarball is kept in tmp/config/config.tar.gz and unpacked there, data/.system
// goes to var/lib/mysql/.system, etc/mysql replaces the partition's etc/mysql, var/system
// links to the .system directory, and SlapOS' own etc/mariadb.cnf, when the partition has
// one, is linked as etc/mysql/custom.d/01_mariadb.cnf. Unlike SlapOS' script it keeps the
// operator's files of custom.d, and etc/mysql is swapped by renames, so mariadbd never
// reads a half-written directory. It reports whether my.cnf or a file it includes changed.
func (l Layout) Install(bundle []byte) (changed bool, err error) {
	for _, d := range []string{l.ConfigTmp(), l.Run(), l.Log(), l.DataDir()} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return false, fmt.Errorf("install: %w", err)
		}
	}
	tarball := filepath.Join(l.ConfigTmp(), "config.tar.gz")
	if err := writeFileAtomic(tarball, bundle, 0o600); err != nil { // dbjob.cnf holds a password
		return false, fmt.Errorf("install: %w", err)
	}
	stage := filepath.Join(l.ConfigTmp(), "unpacked-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := configurator.Unpack(bytes.NewReader(bundle), stage, ""); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	newEtc := filepath.Join(stage, "etc", "mysql")
	if _, err := os.Stat(filepath.Join(newEtc, "my.cnf")); err != nil {
		return false, fmt.Errorf("install: the bundle has no etc/mysql/my.cnf: not a database bundle")
	}
	// data/.system -> var/lib/mysql/.system: directories created, files replaced.
	if err := mergeTree(filepath.Join(stage, "data", ".system"), l.System()); err != nil {
		return false, fmt.Errorf("install: .system: %w", err)
	}
	old := l.EtcMySQL()
	changed = !sameTree(newEtc, old, "custom.d")
	// The operator's custom.d files move to the new tree (the bundle's custom.d is empty).
	if ents, err := os.ReadDir(filepath.Join(old, "custom.d")); err == nil {
		if err := os.MkdirAll(filepath.Join(newEtc, "custom.d"), 0o755); err != nil {
			return false, fmt.Errorf("install: %w", err)
		}
		for _, e := range ents {
			dst := filepath.Join(newEtc, "custom.d", e.Name())
			if _, err := os.Lstat(dst); err == nil {
				continue
			}
			if err := os.Rename(filepath.Join(old, "custom.d", e.Name()), dst); err != nil {
				return false, fmt.Errorf("install: custom.d: %w", err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	aside := old + ".old-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	hadOld := false
	if err := os.Rename(old, aside); err == nil {
		hadOld = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("install: %w", err)
	}
	if err := os.Rename(newEtc, old); err != nil {
		if hadOld {
			os.Rename(aside, old)
		}
		return false, fmt.Errorf("install: %w", err)
	}
	if hadOld {
		os.RemoveAll(aside)
	}
	// SlapOS' links: var/system, and its own mariadb.cnf read last.
	if err := replaceSymlink(l.System(), filepath.Join(l.Root, "var", "system")); err != nil {
		return changed, fmt.Errorf("install: %w", err)
	}
	if _, err := os.Stat(filepath.Join(l.Root, "etc", "mariadb.cnf")); err == nil {
		if err := replaceSymlink(filepath.Join(l.Root, "etc", "mariadb.cnf"), filepath.Join(old, "custom.d", "01_mariadb.cnf")); err != nil {
			return changed, fmt.Errorf("install: %w", err)
		}
	}
	return changed, nil
}

// mergeTree copies src into dst: directories created, regular files replaced.
func mergeTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == src {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return writeFileAtomic(target, b, info.Mode().Perm())
		}
		return nil
	})
}

// sameTree reports whether two directory trees hold the same files (names, link targets,
// contents), skipping the directory named skip.
func sameTree(a, b, skip string) bool {
	list := func(root string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			if rel == skip && d.IsDir() {
				return filepath.SkipDir
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				t, _ := os.Readlink(p)
				m[rel] = "->" + t
			case d.Type().IsRegular():
				c, _ := os.ReadFile(p)
				m[rel] = string(c)
			}
			return nil
		})
		return m
	}
	ma, mb := list(a), list(b)
	if len(ma) != len(mb) {
		return false
	}
	for k, v := range ma {
		if mb[k] != v {
			return false
		}
	}
	return true
}

func replaceSymlink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	tmp := link + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// clientLogin reads the [client] user and password of a MariaDB option file (dbjob.cnf),
// unquoting as MariaDB's option parser does.
func clientLogin(path string) (user, password string, err error) {
	user, password, _, err = clientOptions(path)
	return user, password, err
}

// clientOptions reads the [client] user, password and socket of an option file.
func clientOptions(path string) (user, password, socket string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", "", err
	}
	defer f.Close()
	return parseClientOptions(f)
}

func parseClientLogin(r io.Reader) (user, password string, err error) {
	user, password, _, err = parseClientOptions(r)
	return user, password, err
}

func parseClientOptions(r io.Reader) (user, password, socket string, err error) {
	sc := bufio.NewScanner(r)
	group := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && strings.HasSuffix(line, "]") {
			group = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if group != "client" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.ReplaceAll(strings.TrimSpace(k), "_", "-")
		v = unquoteOption(strings.TrimSpace(v))
		switch k {
		case "user":
			user = v
		case "password":
			password = v
		case "socket":
			socket = v
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", "", err
	}
	if user == "" {
		return "", "", "", errors.New("no [client] user")
	}
	return user, password, socket, nil
}

// unquoteOption undoes the quoting of an option value: "..." or '...' with backslash
// escapes (\\ \" \' \n \r \t \b \s); an unquoted value ends at a # comment.
func unquoteOption(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		q := v[0]
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			if c == q {
				break
			}
			if c == '\\' && i+1 < len(v) {
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case 'b':
					b.WriteByte('\b')
				case 's':
					b.WriteByte(' ')
				default:
					b.WriteByte(v[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		return b.String()
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
