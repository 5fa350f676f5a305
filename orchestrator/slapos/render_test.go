package slapos

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/config"
)

func mustRequest(t *testing.T, js string) *Request {
	t.Helper()
	req, _, err := ParseRequest([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRenderCluster1(t *testing.T) {
	req, _, err := ParseRequest(readCluster1Request(t))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := Render(req, RenderOptions{OutDir: out, Source: cluster1Request})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	c, ok := cfg.Cluster("cluster1")
	if !ok || len(cfg.Clusters) != 1 {
		t.Fatalf("clusters %v", cfg.Names())
	}
	s := c.Settings
	hosts, _ := s.Hosts()
	if len(hosts) != 4 {
		t.Fatalf("hosts %v", hosts)
	}
	for i, h := range hosts {
		if h.Host != "::1" || h.Port != 2099+100*i {
			t.Errorf("host %d: %s", i, h)
		}
	}
	if s.ProvOrchestrator != "slapos" || s.DBServersPreferedMaster != "[::1]:2099" || !s.ProxySQL ||
		s.ProxySQLPort != 7032 || s.ProxySQLAdminPort != 6032 || s.ProxySQLServers != "127.0.0.1" ||
		s.ProxySQLServersIPv6 != "[::1]" || s.ProxySQLUser != "external" || !s.ProxySQLBootstrap ||
		s.DBServersConnectTimeout != 1 || s.FailoverMode != "manual" || s.SwitchoverWaitKill != 5000 ||
		!s.Autoseed || !s.Autorejoin || s.FailoverMaxSlaveDelay != 30 || !strings.HasSuffix(s.ProvDBTags, ",ssl") ||
		s.ProvProxyTags != "pkg,masterslave,linux,noreadwritesplit,ssl" || s.Include != "cluster.d" || !s.APIHTTPSBind {
		t.Errorf("settings not as requested: %+v", s)
	}
	if len(s.List("slapos-db-partitions")) != 4 || s.SlapOSProxySQLPartitions != out {
		t.Errorf("partitions %q %q", s.SlapOSDBPartitions, s.SlapOSProxySQLPartitions)
	}
	p, err := Place(c)
	if err != nil || p.Databases[3].Partition != filepath.Join(out, "partitions", "cluster1-mariadb-3") || p.Proxies[0].IPv6Bind != "[::1]" {
		t.Errorf("placement %+v %v", p, err)
	}
	// Passwords are generated, differ, and stay across renders.
	cred, _ := s.DBCredential()
	if cred.User != "repman" || len(cred.Password) != 16 || cred.Password == s.ProxySQLPassword {
		t.Errorf("db credential %q", cred.User)
	}
	if _, err := Render(req, RenderOptions{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	cfg2, _ := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	c2, _ := cfg2.Cluster("cluster1")
	if c2.Settings.DBServersCredential != s.DBServersCredential || cfg2.Default.APICredentials != cfg.Default.APICredentials {
		t.Error("a second render changed the passwords")
	}
	for _, f := range append(res.Files, "cluster.d/config-cluster1.toml") {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st.Mode(), err)
		}
	}
	var preqs []map[string]any
	b, _ := os.ReadFile(filepath.Join(out, "partition-requests.json"))
	if err := json.Unmarshal(b, &preqs); err != nil || len(preqs) != 4 || preqs[2]["sla-computer_guid"] != "COMP-XXX" {
		t.Errorf("partition requests %s %v", b, err)
	}
	if strings.Contains(string(b), cred.Password) {
		t.Error("partition-requests.json holds a secret")
	}
}

func TestRenderIPv4AndAllocation(t *testing.T) {
	req := mustRequest(t, `{"repman-cluster-dict": {"b": {"use-ipv6": false}, "a.x": {"database-amount": 2}}}`)
	out := t.TempDir()
	alloc := &Allocation{
		Root: Partition{Path: "/srv/slapgrid/slappart7", IPv4: "10.0.74.165", IPv6: "2001:db8::5"},
		Clusters: map[string]ClusterAllocation{
			"a.x": {Databases: []Partition{{Path: "/srv/slapgrid/slappart10", IPv6: "2001:db8::10"}, {Path: "/srv/slapgrid/slappart11", IPv6: "[2001:db8::11]"}},
				ProxySQLPort: 7100, ProxySQLAdminPort: 6100},
			"b": {Databases: []Partition{{Path: "/srv/slapgrid/slappart12", IPv4: "10.0.74.170"}, {Path: "/srv/slapgrid/slappart13", IPv4: "10.0.74.171"}}},
		},
	}
	if _, err := Render(req, RenderOptions{OutDir: out, Alloc: alloc}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ax, _ := cfg.Cluster("a.x")
	b, _ := cfg.Cluster("b")
	if ax == nil || b == nil {
		t.Fatalf("clusters %v", cfg.Names())
	}
	if ax.Settings.DBServersHosts != "[2001:db8::10]:2099,[2001:db8::11]:2199" || ax.Settings.ProxySQLPort != 7100 || ax.Settings.ProxySQLAdminPort != 6100 {
		t.Errorf("a.x: %q %d %d", ax.Settings.DBServersHosts, ax.Settings.ProxySQLPort, ax.Settings.ProxySQLAdminPort)
	}
	// b is the second cluster by name and has no allocated ports: the first free ones.
	if b.Settings.DBServersHosts != "10.0.74.170:2099,10.0.74.171:2199" || b.Settings.ProxySQLPort != 7032 || b.Settings.ProxySQLAdminPort != 6032 {
		t.Errorf("b: %q %d %d", b.Settings.DBServersHosts, b.Settings.ProxySQLPort, b.Settings.ProxySQLAdminPort)
	}
	if cfg.Default.APIBind != "10.0.74.165" || b.Settings.ProxySQLServersIPv6 != "[2001:db8::5]" || b.Settings.SlapOSProxySQLPartitions != "/srv/slapgrid/slappart7" {
		t.Errorf("root: %q %q", cfg.Default.APIBind, b.Settings.ProxySQLServersIPv6)
	}
	// Dropping cluster b removes its generated file; a hand-written file stays.
	hand := filepath.Join(out, "cluster.d", "config-hand.toml")
	if err := os.WriteFile(hand, []byte("[hand]\ndb-servers-hosts = \"db1:3306\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req = mustRequest(t, `{"repman-cluster-dict": {"a.x": {}}}`)
	res, err := Render(req, RenderOptions{OutDir: out, Alloc: alloc})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0] != filepath.Join("cluster.d", "config-b.toml") {
		t.Errorf("removed %v", res.Removed)
	}
	if _, err := os.Stat(hand); err != nil {
		t.Error("hand-written cluster file removed")
	}
}

func TestRenderAllocationProblems(t *testing.T) {
	req := mustRequest(t, `{"repman-cluster-dict": {"c1": {"database-amount": 3}, "c2": {"use-ipv6": false}}}`)
	alloc := &Allocation{
		Root: Partition{Path: "relative", IPv4: "10.0.0.1", IPv6: "2001:db8::1"},
		Clusters: map[string]ClusterAllocation{
			"c1": {Databases: []Partition{{Path: "/p1", IPv6: "2001:db8::2"}, {Path: "/p2", IPv6: "2001:db8::3"}}},
		},
	}
	_, err := Render(req, RenderOptions{OutDir: t.TempDir(), Alloc: alloc})
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		`partitions: root: path must be absolute, without commas or quotes: "relative"`,
		"partitions: c1: 2 database partitions for database-amount 3",
		"partitions: c2: no allocation for this cluster",
	}
	if strings.Join(re.Lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q", re.Lines)
	}
	alloc = &Allocation{Root: Partition{Path: "/r", IPv4: "10.0.0.1", IPv6: "2001:db8::1"}, Clusters: map[string]ClusterAllocation{
		"c1": {Databases: []Partition{{Path: "/p1", IPv4: "10.0.0.2"}, {Path: "/p2", IPv6: "2001:db8::3"}, {Path: "/p3", IPv6: "10.0.0.3"}}},
		"c2": {Databases: []Partition{{Path: "/p4", IPv4: "10.0.0.4"}, {Path: "/p5", IPv4: "x"}}},
	}}
	_, err = Render(req, RenderOptions{OutDir: t.TempDir(), Alloc: alloc})
	if !errors.As(err, &re) || len(re.Lines) != 3 {
		t.Fatalf("error %v", err)
	}
}

func TestReadAllocation(t *testing.T) {
	a, err := ReadAllocation([]byte(`{"root": {"path": "/srv/slapgrid/slappart7", "ipv4": "10.0.74.165", "ipv6": "2001:db8::5"},
		"clusters": {"cluster1": {"databases": [{"path": "/srv/slapgrid/slappart10", "ipv6": "2001:db8::10"}], "proxysql-port": 7040}}}`))
	if err != nil || a.Clusters["cluster1"].ProxySQLPort != 7040 || a.Root.IPv6 != "2001:db8::5" {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := ReadAllocation([]byte(`{"root": {"pth": "/x"}}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestPickPortsRanges(t *testing.T) {
	js := `{"repman-cluster-dict": {`
	for i := 0; i < 102; i++ {
		if i > 0 {
			js += ","
		}
		js += `"c` + string(rune('a'+i/26)) + string(rune('a'+i%26)) + `": {}`
	}
	js += `}}`
	req := mustRequest(t, js)
	alloc, err := resolveAllocation(req, RenderOptions{}, "/out")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pickPorts(req, alloc, RenderOptions{}); err == nil || !strings.Contains(err.Error(), "no free ProxySQL port") {
		t.Fatalf("102 clusters fit in 101 ports: %v", err)
	}
	req.Clusters = req.Clusters[:3]
	ports, err := pickPorts(req, alloc, RenderOptions{ProxySQLPort: 9000, ProxySQLAdminPort: 9100})
	if err != nil || ports["cac"] != [2]int{9002, 9102} {
		t.Fatalf("%v %v", ports, err)
	}
}

// TestRenderedClusterServesBundles renders a request, loads it, and downloads the real
// configurator bundles of a database and of the ProxySQL through the config endpoint with
// the credentials the render wrote; with slapos-legacy-anonymous-routes, an anonymous
// database bundle carries the job account and not the db-servers-credential.
func TestRenderedClusterServesBundles(t *testing.T) {
	req := mustRequest(t, `{"repman-cluster-dict": {"cluster1": {"database-amount": 3, "tags": ["gtidstrict", "innodb", "readonly"], "proxy-tags": ["pkg", "masterslave"]}}}`)
	out := t.TempDir()
	if _, err := Render(req, RenderOptions{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cfg.Cluster("cluster1")
	if c.Settings.SlapOSLegacyAnonymousRoutes {
		t.Fatal("legacy anonymous routes on by default")
	}
	o, err := New(c, Options{Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handlers{Clusters: ClusterSourceFunc(func(name string) (Cluster, bool) {
		return Cluster{Orchestrator: o, Config: c}, strings.EqualFold(name, c.Name)
	}), Bundles: ConfiguratorBundles(nil), Log: quiet()}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	var creds []NodeCredential
	b, _ := os.ReadFile(filepath.Join(out, "partition-credentials.json"))
	if err := json.Unmarshal(b, &creds); err != nil || len(creds) != 4 {
		t.Fatalf("partition-credentials.json: %v %s", err, b)
	}
	cred := map[string]string{}
	for _, nc := range creds {
		cred[nc.Address] = nc.Credential
	}
	var preqs []struct {
		Name   string         `json:"name"`
		Config map[string]any `json:"config"`
	}
	b, _ = os.ReadFile(filepath.Join(out, "partition-requests.json"))
	if err := json.Unmarshal(b, &preqs); err != nil || len(preqs) != 3 || preqs[1].Config[CredentialParameter] != cred["[::1]:2199"] {
		t.Fatalf("partition-requests.json carries the databases' credentials: %v %s", err, b)
	}
	for _, f := range []string{"partition-credentials.json", "partition-requests.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	db := srv.URL + "/api/clusters/cluster1/servers/[::1]/2199/config"
	code, body := getAuth(t, db, "Bearer "+cred["[::1]:2199"])
	if code != 200 {
		t.Fatalf("db config: %d %q", code, body)
	}
	dir := t.TempDir()
	names := untar(t, []byte(body), dir)
	cnf, err := os.ReadFile(filepath.Join(dir, "etc/mysql/my.cnf"))
	if err != nil || !strings.Contains(string(cnf), filepath.Join(out, "partitions", "cluster1-mariadb-1")) {
		t.Fatalf("my.cnf of partition 1 (%v): %v\n%s", names, err, cnf)
	}
	admin, _ := c.Settings.DBCredential()
	if job, _ := os.ReadFile(filepath.Join(dir, "etc/mysql/dbjob.cnf")); !strings.Contains(string(job), admin.Password) {
		t.Fatal("a partition with its credential gets the admin login in dbjob.cnf")
	}
	if code, _ := getAuth(t, db, "Bearer "+cred["[::1]:2099"]); code != 401 {
		t.Fatalf("db config with another partition's credential: %d", code)
	}
	px := srv.URL + "/api/clusters/cluster1/servers/127.0.0.1/6032/config"
	code, body = getAuth(t, px, "Bearer "+cred["127.0.0.1:6032"])
	if code != 200 {
		t.Fatalf("proxy config: %d %q", code, body)
	}
	dir = t.TempDir()
	untar(t, []byte(body), dir)
	if _, err := os.Stat(filepath.Join(dir, "etc/proxysql.cnf")); err != nil {
		t.Fatalf("etc/proxysql.cnf for SlapOS' download script: %v", err)
	}
	if code, _ := get(t, db); code != 401 {
		t.Fatalf("anonymous db config: %d", code)
	}

	// Legacy anonymous routes, turned on by the request parameter.
	req = mustRequest(t, `{"slapos-legacy-anonymous-routes": true, "repman-cluster-dict": {"cluster1": {"database-amount": 3, "tags": ["gtidstrict", "innodb", "readonly"], "proxy-tags": ["pkg", "masterslave"]}}}`)
	if _, err := Render(req, RenderOptions{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Load(filepath.Join(out, "config.toml"), config.Options{}); err != nil {
		t.Fatal(err)
	}
	c, _ = cfg.Cluster("cluster1")
	if !c.Settings.SlapOSLegacyAnonymousRoutes {
		t.Fatal("slapos-legacy-anonymous-routes not rendered")
	}
	code, body = get(t, db)
	if code != 200 {
		t.Fatalf("anonymous legacy db config: %d %q", code, body)
	}
	if strings.Contains(body, admin.Password) {
		t.Fatal("an anonymous bundle holds the db-servers-credential password")
	}
	dir = t.TempDir()
	untar(t, []byte(body), dir)
	job, _ := os.ReadFile(filepath.Join(dir, "etc/mysql/dbjob.cnf"))
	key, _ := LoadOrCreatePartitionKey(WorkingDir(&c.Settings))
	if !strings.Contains(string(job), `user = "repman_job"`) || !strings.Contains(string(job), JobPassword(key, "cluster1")) || strings.Contains(string(job), admin.Password) {
		t.Fatalf("anonymous dbjob.cnf:\n%s", job)
	}
	// The ProxySQL runs at 127.0.0.1 here, the test's own address: its bundle is served to
	// its address only (SlapOS's download-proxy-config in the root partition).
	if code, _ := get(t, px); code != 200 {
		t.Fatalf("anonymous legacy proxy config from the proxy's address: %d", code)
	}
}
