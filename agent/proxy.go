package agent

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/configurator"
	"replication-manager-pro/ipv6"
)

// The kinds of partition service an agent runs.
const (
	KindDatabase = "database"
	KindProxySQL = "proxysql"
)

// ProxyLayout is where a cluster's ProxySQL lives in the partition that runs it (on SlapOS
// the repman root partition, one ProxySQL per cluster), as SlapOS' repman software lays it
// out: its configuration in etc/repman/proxy/proxysql-<cluster>.cnf, its datadir in
// var/lib/proxy/<cluster>, its output in var/log/proxy/proxysql-<cluster>.log and the
// downloaded bundle in tmp/config/proxies. The agent's own files carry the cluster's name,
// so that the agents of several clusters share the partition.
type ProxyLayout struct{ Root, Cluster string }

func (l ProxyLayout) Cnf() string {
	return filepath.Join(l.Root, "etc", "repman", "proxy", "proxysql-"+l.Cluster+".cnf")
}
func (l ProxyLayout) DataDir() string   { return filepath.Join(l.Root, "var", "lib", "proxy", l.Cluster) }
func (l ProxyLayout) ConfigTmp() string { return filepath.Join(l.Root, "tmp", "config", "proxies") }
func (l ProxyLayout) Tarball() string {
	return filepath.Join(l.ConfigTmp(), "proxies-"+l.Cluster+".tar.gz")
}
func (l ProxyLayout) StdoutLog() string {
	return filepath.Join(l.Root, "var", "log", "proxy", "proxysql-"+l.Cluster+".log")
}

// SSLDir is where proxysql.cnf looks for the backend TLS files (ssl_p2s_*): the manager
// names them under the partition's etc/proxysql/ssl.
func (l ProxyLayout) SSLDir() string  { return filepath.Join(l.Root, "etc", "proxysql", "ssl") }
func (l ProxyLayout) Run() string     { return filepath.Join(l.Root, "var", "run") }
func (l ProxyLayout) PidFile() string { return filepath.Join(l.Run(), "proxysql-"+l.Cluster+".pid") }
func (l ProxyLayout) StatusFile() string {
	return filepath.Join(l.Run(), "agent-proxysql-"+l.Cluster+"-status.json")
}
func (l ProxyLayout) WantFile() string {
	return filepath.Join(l.Run(), "agent-proxysql-"+l.Cluster+"-wanted")
}
func (l ProxyLayout) LockFile() string {
	return filepath.Join(l.Run(), "agent-proxysql-"+l.Cluster+".lock")
}

// Install unpacks a ProxySQL bundle as SlapOS' download-proxy-config does: the tarball kept
// in tmp/config/proxies and unpacked there, its etc/proxysql.cnf copied to Cnf. Beyond
// SlapOS' script, the TLS files go where proxysql.cnf and ProxySQL look for them (the
// backend's under SSLDir, the frontend's proxysql-*.pem into the datadir), so that a
// cluster with tag ssl works. Every file is replaced atomically; it reports whether any
// changed.
func (l ProxyLayout) Install(bundle []byte) (changed bool, err error) {
	for _, d := range []string{l.ConfigTmp(), l.DataDir(), filepath.Dir(l.StdoutLog()), l.Run(), filepath.Dir(l.Cnf())} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return false, fmt.Errorf("install: %w", err)
		}
	}
	if err := writeFileAtomic(l.Tarball(), bundle, 0o600); err != nil { // it holds passwords
		return false, fmt.Errorf("install: %w", err)
	}
	stage := filepath.Join(l.ConfigTmp(), "unpacked-"+l.Cluster+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := configurator.Unpack(bytes.NewReader(bundle), stage, ""); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	cnf, err := os.ReadFile(filepath.Join(stage, configurator.ProxySQLCnfSlapOSPath))
	if err != nil {
		if cnf, err = os.ReadFile(filepath.Join(stage, configurator.ProxySQLCnfPath)); err != nil {
			return false, fmt.Errorf("install: the bundle has no %s: not a ProxySQL bundle", configurator.ProxySQLCnfSlapOSPath)
		}
	}
	put := func(dst string, data []byte, mode os.FileMode) error {
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
			return nil
		}
		changed = true
		return writeFileAtomic(dst, data, mode)
	}
	if err := put(l.Cnf(), cnf, 0o600); err != nil {
		return false, fmt.Errorf("install: %w", err)
	}
	err = filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(stage, p)
		var dst string
		switch {
		case strings.HasPrefix(rel, filepath.Join("etc", "proxysql", "ssl")+"/"):
			dst = filepath.Join(l.SSLDir(), filepath.Base(rel))
		case frontendPEM.MatchString(d.Name()):
			dst = filepath.Join(l.DataDir(), d.Name())
		default:
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return put(dst, b, info.Mode().Perm())
	})
	if err != nil {
		return changed, fmt.Errorf("install: TLS files: %w", err)
	}
	return changed, nil
}

// frontendPEM are the files ProxySQL serves its clients' TLS with, read from its datadir.
var frontendPEM = regexp.MustCompile(`^proxysql-(ca|cert|key)\.pem$`)

var cnfListeners = regexp.MustCompile(`(?m)^\s*(mysql_ifaces|interfaces)\s*=\s*"([^"]*)"`)

// Listeners are the TCP addresses the installed proxysql.cnf has ProxySQL listen on (admin
// and clients; the unix sockets left out): ProxySQL is ready when all accept connections,
// and something else runs in its place when one does before it started.
func (l ProxyLayout) Listeners() []ipv6.HostPort {
	b, err := os.ReadFile(l.Cnf())
	if err != nil {
		return nil
	}
	var out []ipv6.HostPort
	for _, m := range cnfListeners.FindAllStringSubmatch(string(b), -1) {
		for _, e := range strings.Split(m[2], ";") {
			host, port, err := net.SplitHostPort(strings.TrimSpace(e))
			if err != nil {
				continue // a unix socket
			}
			p, err := strconv.Atoi(port)
			if err != nil || p <= 0 {
				continue
			}
			out = append(out, ipv6.HostPort{Host: host, Port: p})
		}
	}
	return out
}

// proxysqlSpec is ProxySQL as SlapOS' supervisord program runs it: in the foreground
// (-f: the agent supervises it; output to the log), on the installed cnf, merged into its
// datadir's database at each start (--reload).
func proxysqlSpec(l ProxyLayout, bin string, extra []string, addr ipv6.HostPort) procSpec {
	args := append([]string{"-f", "-c", l.Cnf(), "-D", l.DataDir(), "--reload"}, extra...)
	return procSpec{name: "proxysql", bin: bin, args: args, dir: l.DataDir(), stdout: l.StdoutLog(),
		pidFile: l.PidFile(), writePid: true, wantFile: l.WantFile(), statusFile: l.StatusFile(),
		ready: func() []ipv6.HostPort {
			if ls := l.Listeners(); len(ls) > 0 {
				return ls
			}
			return []ipv6.HostPort{addr}
		}}
}
