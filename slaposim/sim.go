// Package slaposim simulates SlapOS nodes on one machine, so that the seed's story runs end
// to end without a SlapOS master: `replication-manager-pro slapos simulate --parameters
// request.json` renders the request as the instance profile would, makes the computers
// (one network namespace each, with one IPv6 address per partition, when root; this
// machine's loopback otherwise) and their partitions (directories), starts the manager in
// the root partition, one partition agent per database partition (inside its computer),
// the cluster's proxy (its ProxySQL under a partition agent when Options.ProxySQL names the
// binary, else HAProxy in its place), bootstraps replication as
// SlapOS' repman-manager.sh does, requests the shared instances' databases and writes what
// SlapOS would publish.
package slaposim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/haproxy"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator/slapos"
)

// Options drive a simulation.
type Options struct {
	Parameters string // the instance request (JSON), as `slapos render` takes it
	// SharedInstances is a file of shared instances (slave_instance_list), as `slapos
	// render --shared-instances` takes it; "" uses the request's own list.
	SharedInstances string
	Dir             string // everything lives under it: root/ (the repman partition), computers' partitions
	// Network is "netns" (computers as network namespaces: needs root), "loopback" (every
	// partition on ::1 and 127.0.0.1), or "" for netns when root, loopback otherwise.
	Network string
	// Self returns the command running this program with args (the manager's "monitor",
	// the agents' "slapos agent"); the simulator sets its output and runs it.
	Self func(args ...string) *exec.Cmd
	// MonitorArgs are more flags for the manager (e.g. --monitoring-ticker 1).
	MonitorArgs []string
	// AgentArgs are more flags for every database agent.
	AgentArgs []string
	// ProxySQL is the proxysql binary: each cluster's ProxySQL then runs in the root
	// partition under its partition agent (slapos agent --kind proxysql), as rendered. ""
	// puts HAProxy in its place.
	ProxySQL string
	// Log receives the simulator's progress lines (nil: discarded).
	Log io.Writer
}

// Sim is a running simulation. Its methods are not safe for concurrent use.
type Sim struct {
	opt     Options
	nets    *network // nil in loopback mode
	Root    slapos.Partition
	APIPort int
	// HTTPPort is the manager's plain listener (the partition routes).
	HTTPPort int
	API      *API
	DBs      []*Database
	// Published is what SlapOS would publish (root/published.json).
	Published slapos.Published

	computers map[string]*Computer
	manager   *proc
	proxies   map[string]*proc // by cluster
	req       *slapos.Request
	log       io.Writer
	adminPW   string
}

// Database is one database partition.
type Database struct {
	Cluster   string
	Index     int
	Partition string
	Addr      ipv6.HostPort // as the manager names it
	IPv4      string
	Computer  *Computer
	agent     *proc
}

// RootDir is the root (repman) partition's directory: config.toml, cluster.d/, the
// rendered and published files.
func (s *Sim) RootDir() string { return filepath.Join(s.opt.Dir, "root") }

func (s *Sim) logf(format string, a ...any) {
	fmt.Fprintf(s.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
}

// Start runs the simulation until everything replicates and the shared instances'
// databases exist; on error everything started is stopped.
func Start(ctx context.Context, opt Options) (_ *Sim, err error) {
	if opt.Self == nil {
		return nil, errors.New("slaposim: Options.Self is required")
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, err
	}
	opt.Dir = dir
	switch opt.Network {
	case "":
		opt.Network = "loopback"
		if os.Geteuid() == 0 {
			opt.Network = "netns"
		}
	case "netns", "loopback":
	default:
		return nil, fmt.Errorf("network %q: want netns or loopback", opt.Network)
	}
	s := &Sim{opt: opt, computers: map[string]*Computer{}, proxies: map[string]*proc{}, log: opt.Log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(s.RootDir(), 0o755); err != nil {
		return nil, err
	}
	if opt.Network == "netns" {
		if os.Geteuid() != 0 {
			return nil, errors.New("network namespaces need root (use --network loopback)")
		}
		if s.nets, err = newNetwork(); err != nil {
			return nil, err
		}
		s.Root = slapos.Partition{Path: s.RootDir(), IPv4: RootIPv4, IPv6: RootIPv6}
	} else {
		s.Root = slapos.Partition{Path: s.RootDir(), IPv4: "127.0.0.1", IPv6: "::1"}
	}
	s.logf("network: %s (root partition %s, [%s])", opt.Network, s.Root.IPv4, s.Root.IPv6)
	if err := s.render(opt.Parameters); err != nil {
		return nil, err
	}
	if s.APIPort, err = freePort(s.Root.IPv4); err != nil {
		return nil, err
	}
	if s.HTTPPort, err = freePort(s.Root.IPv4); err != nil {
		return nil, err
	}
	if err := s.startProxies(); err != nil {
		return nil, err
	}
	if err := s.startManager(); err != nil {
		return nil, err
	}
	for _, db := range s.DBs {
		if err := s.startAgent(db); err != nil {
			return nil, err
		}
	}
	if err := s.settle(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// settle does what the root instance's profile does once its databases run: bootstrap
// replication (SlapOS' repman-manager.sh), request the shared instances' databases, write
// the published parameters, and wait until every database replicates.
func (s *Sim) settle(ctx context.Context) error {
	s.API = NewAPI(fmt.Sprintf("https://%s", ipv6.HostPort{Host: s.Root.IPv4, Port: s.APIPort}), "admin", s.adminPW)
	if err := waitFor(ctx, time.Minute, "the manager's API", func() bool { return s.API.Login(ctx) == nil }); err != nil {
		return fmt.Errorf("%w; manager log: %s", err, tailFile(s.managerLog(), 20))
	}
	for _, c := range s.req.Clusters {
		if err := s.bootstrap(ctx, c.Name); err != nil {
			return err
		}
	}
	if err := s.requestDatabases(ctx); err != nil {
		return err
	}
	if err := s.WaitReplicating(ctx, 5*time.Minute); err != nil {
		return err
	}
	return s.publish()
}

// render renders the request for the partitions allocated so far plus new ones.
func (s *Sim) render(params string) error {
	data, err := os.ReadFile(params)
	if err != nil {
		return fmt.Errorf("--parameters: %w", err)
	}
	req, warnings, err := slapos.ParseRequest(data)
	if err != nil {
		var re *slapos.RequestError
		if errors.As(err, &re) {
			return fmt.Errorf("%s: %s", params, strings.Join(re.Lines, "; "))
		}
		return fmt.Errorf("%s: %w", params, err)
	}
	for _, w := range warnings {
		s.logf("warning: %s", w)
	}
	if s.opt.SharedInstances != "" {
		b, err := os.ReadFile(s.opt.SharedInstances)
		if err != nil {
			return fmt.Errorf("shared instances: %w", err)
		}
		if req.SharedInstances, err = slapos.ReadSharedInstances(b); err != nil {
			return fmt.Errorf("%s: %w", s.opt.SharedInstances, err)
		}
	}
	s.req = req
	alloc := &slapos.Allocation{Root: s.Root, Clusters: map[string]slapos.ClusterAllocation{}}
	have := map[string]*Database{}
	for _, db := range s.DBs {
		have[db.Cluster+"\x00"+strconv.Itoa(db.Index)] = db
	}
	for _, c := range req.Clusters {
		var ca slapos.ClusterAllocation
		for i := 0; i < c.DatabaseAmount; i++ {
			db := have[c.Name+"\x00"+strconv.Itoa(i)]
			if db == nil {
				if db, err = s.allocate(c.Name, i, c.ComputerGUIDs[i]); err != nil {
					return err
				}
				s.DBs = append(s.DBs, db)
			}
			p := slapos.Partition{Path: db.Partition, IPv4: db.IPv4, IPv6: ipv6.Unbracket(db.Addr.Host)}
			ca.Databases = append(ca.Databases, p)
		}
		alloc.Clusters[c.Name] = ca
	}
	res, err := slapos.Render(req, slapos.RenderOptions{OutDir: s.RootDir(), Alloc: alloc, Source: params,
		CheckFreePorts: s.nets == nil})
	if err != nil {
		var re *slapos.RequestError
		if errors.As(err, &re) {
			return fmt.Errorf("render: %s", strings.Join(re.Lines, "; "))
		}
		return fmt.Errorf("render: %w", err)
	}
	for _, rc := range res.Clusters {
		if s.opt.ProxySQL != "" {
			break
		}
		if err := s.useHAProxy(rc); err != nil {
			return err
		}
	}
	cfgText, err := os.ReadFile(filepath.Join(s.RootDir(), "config.toml"))
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`api-credentials = "admin:([^"]+)"`).FindSubmatch(cfgText)
	if m == nil {
		return errors.New("render: no admin in api-credentials")
	}
	s.adminPW = string(m[1])
	// SlapOS hands each database partition its parameters: here a file in the partition.
	var preqs []struct {
		Cluster       string         `json:"cluster"`
		PartitionPath string         `json:"partition-path"`
		Config        map[string]any `json:"config"`
	}
	b, err := os.ReadFile(filepath.Join(s.RootDir(), "partition-requests.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &preqs); err != nil {
		return fmt.Errorf("partition-requests.json: %w", err)
	}
	for _, p := range preqs {
		body, _ := json.MarshalIndent(p.Config, "", "  ")
		if err := os.MkdirAll(p.PartitionPath, 0o755); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(p.PartitionPath, "parameters.json"), append(body, '\n'), 0o600); err != nil {
			return err
		}
	}
	s.logf("rendered %s: %d clusters, %d database partitions", filepath.Base(params), len(req.Clusters), len(s.DBs))
	return nil
}

// allocate makes database partition i of a cluster on the computer of guid.
func (s *Sim) allocate(cluster string, i int, guid string) (*Database, error) {
	if guid == "" {
		guid = "COMP-" + cluster + "-" + strconv.Itoa(i)
	}
	comp := s.computers[guid]
	if comp == nil {
		comp = &Computer{GUID: guid, K: len(s.computers) + 1}
		if s.nets != nil {
			var err error
			if comp, err = s.nets.computer(guid); err != nil {
				return nil, err
			}
		}
		s.computers[guid] = comp
	}
	db := &Database{Cluster: cluster, Index: i, Computer: comp,
		Addr: ipv6.HostPort{Host: "::1", Port: slapos.DatabasePortBase + slapos.DatabasePortStep*i}, IPv4: "127.0.0.1"}
	if s.nets != nil {
		v6, v4, err := comp.partitionAddrs() // the partition's own addresses
		if err != nil {
			return nil, err
		}
		db.Addr.Host, db.IPv4 = v6, v4
	} else {
		comp.part++
	}
	db.Partition = filepath.Join(s.opt.Dir, "computers", sanitize(guid), "slappart"+strconv.Itoa(comp.part))
	return db, os.MkdirAll(db.Partition, 0o755)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// useHAProxy puts HAProxy in front of a cluster instead of ProxySQL (not packaged here):
// on the port SlapOS gives the ProxySQL, bound on the root partition's IPv4 and IPv6.
func (s *Sim) useHAProxy(rc slapos.RenderedCluster) error {
	path := filepath.Join(s.RootDir(), "cluster.d", "config-"+rc.Name+".toml")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, portText, _ := net.SplitHostPort(rc.ProxySQL)
	port, _ := strconv.Atoi(portText)
	readPort, err := freePort(s.Root.IPv4)
	if err != nil {
		return err
	}
	apiPort, err := freePort("127.0.0.1") // the runtime API over TCP: how the manager sees the proxy up
	if err != nil {
		return err
	}
	text := strings.Replace(string(b), "\nproxysql = true\n", "\nproxysql = false\n", 1)
	text += fmt.Sprintf("\n# slapos simulate: HAProxy in front, on the ProxySQL's port (ProxySQL is not packaged here)\n"+
		"haproxy = true\nhaproxy-servers = %q\nhaproxy-servers-ipv6 = %q\nhaproxy-ip-write-bind = %q\nhaproxy-ip-read-bind = %q\n"+
		"haproxy-write-port = %d\nhaproxy-read-port = %d\nhaproxy-stat-port = 0\nhaproxy-api-port = %d\n",
		s.Root.IPv4, "["+s.Root.IPv6+"]", s.Root.IPv4, s.Root.IPv4, port, readPort, apiPort)
	return writeFile(path, []byte(text), 0o600)
}

func (s *Sim) loadConfig() (*config.Config, error) {
	return config.Load(filepath.Join(s.RootDir(), "config.toml"), config.Options{})
}

// startProxies starts (or restarts, after a new render) each cluster's HAProxy in the root
// partition, on the configuration the manager's router expects, or each cluster's ProxySQL
// agent (Options.ProxySQL).
func (s *Sim) startProxies() error {
	cfg, err := s.loadConfig()
	if err != nil {
		return err
	}
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		if s.opt.ProxySQL != "" && c.Settings.ProxySQL {
			if err := s.startProxyAgent(c.Name); err != nil {
				return err
			}
			continue
		}
		if !c.Settings.HAProxy {
			continue
		}
		hs, err := haproxy.SettingsFrom(c, 0)
		if err != nil {
			return err
		}
		text, err := haproxy.Config(hs, nil)
		if err != nil {
			return err
		}
		if len(hs.Socket()) > 97 {
			return fmt.Errorf("%s: longer than HAProxy's 97 characters for a socket path: choose a shorter directory", hs.Socket())
		}
		if err := os.MkdirAll(hs.WorkDir, 0o750); err != nil {
			return err
		}
		cfgPath := filepath.Join(hs.WorkDir, "haproxy.cfg")
		if err := writeFile(cfgPath, []byte(text), 0o640); err != nil {
			return err
		}
		if old := s.proxies[c.Name]; old != nil {
			old.stop(10 * time.Second)
			os.Remove(hs.Socket())
		}
		p, err := startProc("haproxy "+c.Name, exec.Command("haproxy", "-f", cfgPath, "-db"), filepath.Join(s.RootDir(), "var", "log", "haproxy-"+c.Name+".log"))
		if err != nil {
			return fmt.Errorf("haproxy (Debian package haproxy): %w", err)
		}
		s.proxies[c.Name] = p
		if err := waitFor(context.Background(), 10*time.Second, "haproxy's socket", func() bool { return exists(hs.Socket()) }); err != nil {
			return fmt.Errorf("%w: %s", err, tailFile(p.logPath, 10))
		}
		s.logf("haproxy of %s: writes on %s and [%s] port %d", c.Name, s.Root.IPv4, s.Root.IPv6, hs.WritePort)
	}
	return nil
}

// startProxyAgent starts the partition agent of a cluster's ProxySQL in the root partition,
// unless it runs: ProxySQL gets the manager's later configuration through its admin
// interface and the agent's config-change, not by a restart.
func (s *Sim) startProxyAgent(cluster string) error {
	if s.proxies[cluster] != nil {
		return nil
	}
	cert, _ := slapos.TLSPaths(s.RootDir())
	p, err := startProc("proxysql agent "+cluster, s.opt.Self("slapos", "agent", "--kind", "proxysql", "--cluster", cluster,
		"--credentials", filepath.Join(s.RootDir(), "partition-credentials.json"), "--partition", s.RootDir(),
		"--manager", s.ManagerURL(), "--ca-file", cert, "--proxysql", s.opt.ProxySQL), s.ProxyAgentLog(cluster))
	if err != nil {
		return err
	}
	s.proxies[cluster] = p
	s.logf("proxysql agent of %s in the root partition: ProxySQL on %s and [%s]", cluster, s.Root.IPv4, s.Root.IPv6)
	return nil
}

// ProxyAgentLog is the log of a cluster's ProxySQL agent.
func (s *Sim) ProxyAgentLog(cluster string) string {
	return filepath.Join(s.RootDir(), "var", "log", "agent-proxysql-"+cluster+".log")
}

func (s *Sim) managerLog() string { return filepath.Join(s.RootDir(), "var", "log", "repman.log") }

func (s *Sim) startManager() error {
	args := append([]string{"monitor", "--config", filepath.Join(s.RootDir(), "config.toml"),
		"--api-port", strconv.Itoa(s.APIPort), "--http-port", strconv.Itoa(s.HTTPPort)}, s.opt.MonitorArgs...)
	p, err := startProc("manager", s.opt.Self(args...), s.managerLog())
	if err != nil {
		return err
	}
	s.manager = p
	s.logf("manager: https://%s (UI, API and the partition routes)", ipv6.HostPort{Host: s.Root.IPv4, Port: s.APIPort})
	return nil
}

// ManagerURL is where the partitions reach the manager's partition routes: its TLS
// listener, verified against the root partition's certificate (the credentials never
// cross the network in clear).
func (s *Sim) ManagerURL() string {
	return "https://" + ipv6.HostPort{Host: s.Root.IPv4, Port: s.APIPort}.String()
}

func (s *Sim) startAgent(db *Database) error {
	cert, _ := slapos.TLSPaths(s.RootDir())
	args := append([]string{"slapos", "agent", "--parameters", filepath.Join(db.Partition, "parameters.json"),
		"--ipv6", ipv6.Unbracket(db.Addr.Host), "--ipv4", db.IPv4, "--manager", s.ManagerURL(), "--ca-file", cert,
		"--partition", db.Partition}, s.opt.AgentArgs...)
	cmd := db.Computer.wrap(s.opt.Self(args...))
	p, err := startProc("agent "+db.Addr.String(), cmd, filepath.Join(db.Partition, "var", "log", "agent.log"))
	if err != nil {
		return err
	}
	db.agent = p
	s.logf("agent of %s/%d on computer %s: partition %s, database %s", db.Cluster, db.Index, db.Computer.GUID, db.Partition, db.Addr)
	return nil
}

// bootstrap does what SlapOS' repman-manager.sh does once per cluster: wait for the
// databases, clean up, bootstrap master-slave replication, switch the heartbeat on, and
// leave a marker so that it never runs twice.
func (s *Sim) bootstrap(ctx context.Context, cluster string) error {
	marker := filepath.Join(s.RootDir(), "etc", "repman", "bootstrap", cluster+"_bootstrapped")
	if exists(marker) {
		return nil
	}
	base := "/api/clusters/" + cluster
	err := waitFor(ctx, 10*time.Minute, cluster+": waitdatabases", func() bool {
		code, _, err := s.API.Do(ctx, http.MethodGet, base+"/actions/waitdatabases", nil, 2*time.Minute)
		return err == nil && code == http.StatusOK
	})
	if err != nil {
		return err
	}
	for _, step := range []string{"/actions/replication/cleanup", "/actions/replication/bootstrap/master-slave",
		"/settings/actions/switch/database-hearbeat"} {
		code, b, err := s.API.Do(ctx, http.MethodPost, base+step, nil, 5*time.Minute)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%s%s: HTTP %d %s %v", cluster, step, code, firstLine(b), err)
		}
	}
	if err := writeFile(marker, []byte("DO NOT REMOVE THIS FILE\n"), 0o644); err != nil {
		return err
	}
	s.logf("%s: replication bootstrapped", cluster)
	return nil
}

// requestDatabases sends each cluster's shared instances (databases.json of the render) to
// the manager, as SlapOS' slave-db-manage does.
func (s *Sim) requestDatabases(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(s.RootDir(), slapos.DatabasesFile))
	if err != nil {
		return err
	}
	var doc slapos.DatabasesDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	names := make([]string, 0, len(doc))
	for c := range doc {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		if len(doc[c].Databases) == 0 {
			continue
		}
		body, _ := json.Marshal(doc[c])
		err := waitFor(ctx, 2*time.Minute, c+": shared instances' databases", func() bool {
			code, _, err := s.API.Do(ctx, http.MethodPut, "/api/clusters/"+c+"/databases", body, time.Minute)
			return err == nil && code == http.StatusOK
		})
		if err != nil {
			return err
		}
		s.logf("%s: %d shared instances' databases requested", c, len(doc[c].Databases))
	}
	return nil
}

func (s *Sim) publish() error {
	cfg, err := s.loadConfig()
	if err != nil {
		return err
	}
	p, err := slapos.WritePublished(s.RootDir(), cfg, ipv6.HostPort{Host: s.Root.IPv4, Port: s.APIPort}.String())
	if err != nil {
		return err
	}
	s.Published = p
	return nil
}

// ServerState is a database as the manager's API shows it.
type ServerState struct {
	Host  string `json:"host"`
	Port  string `json:"port"`
	State string `json:"state"`
}

// Servers returns the cluster's databases as the manager sees them.
func (s *Sim) Servers(ctx context.Context, cluster string) ([]ServerState, error) {
	var out []ServerState
	err := s.API.JSON(ctx, "/api/clusters/"+cluster+"/topology/servers", &out)
	return out, err
}

// Replicating reports whether the cluster has one Master and every other database Slave.
func (s *Sim) Replicating(ctx context.Context, cluster string, want int) bool {
	srv, err := s.Servers(ctx, cluster)
	if err != nil || len(srv) != want {
		return false
	}
	masters := 0
	for _, x := range srv {
		switch x.State {
		case "Master":
			masters++
		case "Slave":
		default:
			return false
		}
	}
	return masters == 1
}

// WaitReplicating waits until every cluster replicates.
func (s *Sim) WaitReplicating(ctx context.Context, limit time.Duration) error {
	for _, c := range s.req.Clusters {
		c := c
		if err := waitFor(ctx, limit, c.Name+": every database replicating", func() bool {
			return s.Replicating(ctx, c.Name, c.DatabaseAmount)
		}); err != nil {
			srv, _ := s.Servers(ctx, c.Name)
			return fmt.Errorf("%w (servers %+v)", err, srv)
		}
	}
	return nil
}

// Rerender renders a changed request (e.g. database-amount raised), starts the agents of
// new partitions, restarts the proxies on the new configuration and has the manager
// reload its settings; it waits until every database replicates.
func (s *Sim) Rerender(ctx context.Context, params string) error {
	before := len(s.DBs)
	if err := s.render(params); err != nil {
		return err
	}
	if err := s.startProxies(); err != nil {
		return err
	}
	for _, db := range s.DBs[before:] {
		if err := s.startAgent(db); err != nil {
			return err
		}
	}
	for _, c := range s.req.Clusters {
		code, b, err := s.API.Do(ctx, http.MethodPost, "/api/clusters/"+c.Name+"/settings/actions/reload", nil, time.Minute)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%s: reload: HTTP %d %s %v", c.Name, code, firstLine(b), err)
		}
	}
	return s.settle(ctx)
}

// Database returns partition i of a cluster.
func (s *Sim) Database(cluster string, i int) *Database {
	for _, db := range s.DBs {
		if db.Cluster == cluster && db.Index == i {
			return db
		}
	}
	return nil
}

// DatabaseAt returns the database at addr.
func (s *Sim) DatabaseAt(addr ipv6.HostPort) *Database {
	for _, db := range s.DBs {
		if ipv6.SameAddr(db.Addr, addr) {
			return db
		}
	}
	return nil
}

// Close stops the agents (each stops its mariadbd), the proxies (a ProxySQL's agent stops
// it) and the manager, and removes the network. The directory stays.
func (s *Sim) Close() {
	var wg sync.WaitGroup
	for _, db := range s.DBs {
		if db.agent != nil {
			wg.Add(1)
			go func(p *proc) { defer wg.Done(); p.stop(2 * time.Minute) }(db.agent)
		}
	}
	wg.Wait()
	// A mariadbd whose shutdown hung outlives its agent (which sent it SIGTERM): it is this
	// simulation's, found by its pid file and its command line naming its partition.
	for _, db := range s.DBs {
		b, err := os.ReadFile(db.PidFile())
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if pid > 0 && err == nil && strings.Contains(string(cmdline), db.Partition) {
			s.logf("mariadbd of %s (pid %d) outlived its agent: killed", db.Addr, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range s.proxies {
		p.stop(10 * time.Second)
	}
	if s.manager != nil {
		s.manager.stop(30 * time.Second)
	}
	if s.nets != nil {
		s.nets.close()
		s.nets = nil
	}
}

// proc is a child process the simulator owns; its waiter goroutine ends with it.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group (a terminal's Ctrl-C reaches the simulator only, which stops
	// everything in order), and SIGTERM if the simulator dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f.Close()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid is the process's id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// AgentLog returns the path of a database's agent log.
func (db *Database) AgentLog() string { return filepath.Join(db.Partition, "var", "log", "agent.log") }

// PidFile is the database's mariadbd pid file.
func (db *Database) PidFile() string { return filepath.Join(db.Partition, "var", "run", "mariadb.pid") }

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitFor(ctx context.Context, limit time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(bytes.TrimSpace(b)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
