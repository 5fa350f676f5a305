package configurator

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestRequiredTagListsAreKnown(t *testing.T) {
	for _, list := range []string{config.Defaults().ProvDBTags, defaultTags, slaposTags} {
		set, err := ParseTags([]string{list})
		if err != nil {
			t.Fatalf("%s: %v", list, err)
		}
		if len(set) != len(strings.Split(list, ",")) {
			t.Errorf("%s: %d tags parsed", list, len(set))
		}
	}
}

func TestParseTags(t *testing.T) {
	cases := []struct {
		in      []string
		want    string // sorted names, comma-joined
		wantErr string
	}{
		{in: []string{"innodb,row"}, want: "innodb,row"},
		{in: []string{"", " ,innodb,, ", ""}, want: "innodb"},
		{in: []string{","}, want: ""},
		{in: []string{"INNODB", " Row "}, want: "innodb,row"},
		{in: []string{"backhole", "noadaptatiiveflush"}, want: "blackhole,noadaptiveflush"},
		{in: []string{"innodb,inodb"}, wantErr: `unknown tag "inodb"`},
		{in: []string{"tokudb"}, wantErr: `tag "tokudb" is not supported: TokuDB was removed`},
		{in: []string{"noauth"}, wantErr: `tag "noauth" is not supported`},
		{in: []string{"row,statement"}, wantErr: "tags row, statement are exclusive"},
		{in: []string{"bind", "nobind"}, wantErr: "tags bind, nobind are exclusive"},
	}
	for _, c := range cases {
		set, err := ParseTags(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := strings.Join(set.Names(), ","); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCatalogueIsConsistent(t *testing.T) {
	families := map[Family]bool{FamilyReplication: true, FamilyEngine: true, FamilyNetwork: true, FamilyLog: true,
		FamilyDisk: true, FamilySecurity: true, FamilyOptimizer: true, FamilyCharset: true, FamilyMemory: true, FamilySystem: true}
	// A tag's fragment overrides the defaults: MariaDB must read it after every default
	// fragment setting one of its variables.
	setBy := map[string]string{}
	for _, d := range defaults {
		for _, v := range variables(d.Body) {
			setBy[v] = d.Fragment
		}
	}
	for _, tg := range Catalogue() {
		if !families[tg.Family] || tg.Effect == "" && tg.Unsupported == "" {
			t.Errorf("tag %s: family %q, effect %q", tg.Name, tg.Family, tg.Effect)
		}
		if (tg.Fragment == "") != (tg.Body == "") {
			t.Errorf("tag %s: fragment %q with body %q", tg.Name, tg.Fragment, tg.Body)
		}
		if tg.Fragment == "" {
			continue
		}
		if !strings.HasSuffix(tg.Fragment, ".cnf") {
			t.Errorf("tag %s: fragment %s must end in .cnf", tg.Name, tg.Fragment)
		}
		for _, v := range variables(tg.Body) {
			if d, ok := setBy[v]; ok && d >= tg.Fragment {
				t.Errorf("tag %s: %s sets %s but is read before the default %s", tg.Name, tg.Fragment, v, d)
			}
		}
		if !strings.HasPrefix(tg.Body, "[mysqld]\n") {
			t.Errorf("tag %s: body must open the [mysqld] group", tg.Name)
		}
		if tg.Plugin != "" && !strings.Contains(tg.Body, "plugin_load_add = "+tg.Plugin+"\n") {
			t.Errorf("tag %s: does not load its plugin %s", tg.Name, tg.Plugin)
		}
		if tg.Plugin != "" {
			// A plugin's own variables must be loose_: the package may be missing.
			for _, l := range strings.Split(tg.Body, "\n") {
				if l != "" && l != "[mysqld]" && !strings.HasPrefix(l, "plugin_load_add") && !strings.HasPrefix(l, "loose_") {
					t.Errorf("tag %s: plugin variable without loose_: %s", tg.Name, l)
				}
			}
		}
	}
}

// variables returns the option names a fragment body sets (skip_log_bin counts as log_bin).
func variables(body string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") || strings.HasPrefix(l, "{{") {
			continue
		}
		name, _, _ := strings.Cut(l, "=")
		name = strings.TrimPrefix(strings.TrimSpace(name), "loose_")
		out = append(out, strings.TrimPrefix(name, "skip_"))
	}
	return out
}

func TestServerIDFromID(t *testing.T) {
	cases := []struct {
		id   string
		want uint32
		err  bool
	}{
		{"db1234567890123", 12345678, false},
		{"db99999999999999999999", 99999999, false},
		{"db42", 42, false},
		{"db00000000123", 1, false},
		{"db", 0, true},
		{"dbx1234567", 0, true},
	}
	for _, c := range cases {
		got, err := ServerIDFromID(c.id)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ServerIDFromID(%q) = %d, %v; want %d, error %v", c.id, got, err, c.want, c.err)
		}
	}
	// Real ids: eight digits of the CRC64, inside server_id's range.
	for _, h := range []string{"127.0.0.1:3306", "[2001:db8::5]:2099", "db1.example:3306"} {
		hp, err := ipv6.ParseHostPort(h, 3306)
		if err != nil {
			t.Fatal(err)
		}
		id := topology.ServerIDFor(hp)
		got, err := ServerIDFromID(id)
		if err != nil || got == 0 || got > 99999999 {
			t.Errorf("%s: id %s -> %d, %v", h, id, got, err)
		}
	}
}

func TestDomainIDFor(t *testing.T) {
	if d, _ := DomainIDFor("c1", 7, ""); d != 7 {
		t.Errorf("domain 7 -> %d", d)
	}
	if d, _ := DomainIDFor("c1", 0, ""); d != 0 {
		t.Errorf("domain 0 -> %d", d)
	}
	a, _ := DomainIDFor("c1", 0, "src")
	b, _ := DomainIDFor("c2", 0, "src")
	if a == 0 || a == b {
		t.Errorf("multi-source domains %d, %d: want distinct non-zero checksums", a, b)
	}
	if d, _ := DomainIDFor("c1", 3, "src"); d != 3 {
		t.Errorf("explicit domain with source name -> %d", d)
	}
	if _, err := DomainIDFor("c1", -1, ""); err == nil || !strings.Contains(err.Error(), "prov-db-domain") {
		t.Errorf("negative domain: %v", err)
	}
}

func TestSize(t *testing.T) {
	def := DefaultResources()
	with := func(f func(*Resources)) Resources { r := def; f(&r); return r }
	cases := []struct {
		name  string
		r     Resources
		tags  []string
		check func(Sizing) bool
		want  string
	}{
		{"default 256 MB", def, nil, func(s Sizing) bool {
			return s.BufferPoolMB == 153 && s.LogFileMB == 153 && s.KeyBufferMB == 25 && s.AriaPagecacheMB == 25 &&
				s.QueryCacheMB == 0 && s.ThreadsMB == 40 && s.BufferPoolInstances == 1 && s.KeyCacheSegments == 1
		}, "bp 153, redo 153 (capped at the buffer pool), key 25, aria 25, qc 0"},
		{"tiny 32 MB", with(func(r *Resources) { r.MemoryMB = 32 }), nil, func(s Sizing) bool {
			return s.BufferPoolMB == 19 && s.LogFileMB == 128 && s.KeyBufferMB == 3 && s.RocksDBCacheMB == 1
		}, "bp 19, redo floor 128, key 3, shares of 0 MB raised to 1"},
		{"4 GB", with(func(r *Resources) { r.MemoryMB = 4096 }), nil, func(s Sizing) bool {
			return s.BufferPoolMB == 2457 && s.LogFileMB == 1228
		}, "redo = bp/2 between 1 and 20 GB"},
		{"2 GB hits the 1 GB floor", with(func(r *Resources) { r.MemoryMB = 2048 }), nil, func(s Sizing) bool {
			return s.BufferPoolMB == 1228 && s.LogFileMB == 1024
		}, "redo 1024"},
		{"64 GB", with(func(r *Resources) { r.MemoryMB = 65536 }), nil, func(s Sizing) bool {
			return s.BufferPoolMB == 39321 && s.LogFileMB == 19660 && s.BufferPoolInstances == 5
		}, "redo 19660, instances 5"},
		{"256 GB caps redo", with(func(r *Resources) { r.MemoryMB = 262144 }), nil, func(s Sizing) bool {
			return s.LogFileMB == 20480
		}, "redo 20480"},
		{"smallredolog", with(func(r *Resources) { r.MemoryMB = 65536 }), []string{"smallredolog"}, func(s Sizing) bool {
			return s.LogFileMB == 128
		}, "redo 128"},
		{"iops 300", def, nil, func(s Sizing) bool {
			return s.IOCapacity == 100 && s.IOCapacityMax == 300 && s.WriteIOThreads == 2 && s.ReadIOThreads == 1
		}, "io 100/300, write threads 2 (MariaDB's minimum), read threads 1"},
		{"iops 30000, 8 cores", with(func(r *Resources) { r.IOPS = 30000; r.Cores = 8 }), nil, func(s Sizing) bool {
			return s.IOCapacity == 10000 && s.IOCapacityMax == 30000 && s.WriteIOThreads == 60 && s.ReadIOThreads == 8 &&
				s.ParallelThreads == 8 && s.Cores == 8
		}, "io 10000/30000, write 60, read 8"},
		{"iops 90 floors", with(func(r *Resources) { r.IOPS = 90 }), nil, func(s Sizing) bool {
			return s.IOCapacity == 100 && s.IOCapacityMax == 100
		}, "io capacity floors at 100"},
		{"huge latency caps threads", with(func(r *Resources) { r.IOPS = 100000; r.IOPSLatency = 0.01 }), nil, func(s Sizing) bool {
			return s.WriteIOThreads == 64
		}, "write 64"},
		{"custom shares", with(func(r *Resources) { r.SharedPct = "innodb:80,querycache:5,myisam:1" }), nil, func(s Sizing) bool {
			return s.BufferPoolMB == 204 && s.QueryCacheMB == 12 && s.KeyBufferMB == 2 && s.AriaPagecacheMB == 1
		}, "bp 204, qc 12"},
		{"connections and expiry", with(func(r *Resources) { r.MaxConnections = 200; r.ExpireLogDays = 2 }), nil, func(s Sizing) bool {
			return s.MaxConnections == 200 && s.ExpireLogsDays == 2
		}, "200, 2"},
	}
	for _, c := range cases {
		set, err := ParseTags(c.tags)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Size(c.r, set)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !c.check(s) {
			t.Errorf("%s: got %+v; want %s", c.name, s, c.want)
		}
	}
}

func TestSizeErrorsNameTheKey(t *testing.T) {
	def := DefaultResources()
	cases := []struct {
		f    func(*Resources)
		want string
	}{
		{func(r *Resources) { r.MemoryMB = 0 }, "prov-db-memory:"},
		{func(r *Resources) { r.Cores = 0 }, "prov-db-cpu-cores"},
		{func(r *Resources) { r.IOPS = -1 }, "prov-db-disk-iops:"},
		{func(r *Resources) { r.IOPSLatency = -1 }, "prov-db-disk-iops-latency"},
		{func(r *Resources) { r.MaxConnections = 1 }, "prov-db-max-connections"},
		{func(r *Resources) { r.ExpireLogDays = 100 }, "prov-db-expire-log-days"},
		{func(r *Resources) { r.SharedPct = "innodb:x" }, `prov-db-memory-shared-pct: entry "innodb:x"`},
		{func(r *Resources) { r.SharedPct = "innodb:90,aria:20" }, "add up to 110%"},
		{func(r *Resources) { r.SharedPct = "inodb:60" }, `unknown share "inodb"`},
		{func(r *Resources) { r.SharedPct = "innodb:10,innodb:20" }, `"innodb" given twice`},
	}
	for _, c := range cases {
		r := def
		c.f(&r)
		if _, err := Size(r, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", r, err, c.want)
		}
	}
}

func TestLayoutFor(t *testing.T) {
	cases := []struct {
		p    Params
		want Layout
		err  string
	}{
		{Params{Orchestrator: "slapos", Partition: "/srv/slapgrid/slappart7/"}, Layout{Confdir: "/srv/slapgrid/slappart7/etc/mysql",
			Datadir: "/srv/slapgrid/slappart7/var/lib/mysql", SystemDir: "/srv/slapgrid/slappart7/var/lib/mysql/.system",
			Socket: "/srv/slapgrid/slappart7/var/mysqld.sock", SSLDir: "/srv/slapgrid/slappart7/etc/mysql/ssl"}, ""},
		{Params{Orchestrator: "local", NodeDatadir: "/data/c1/[::1]_3306"}, Layout{Confdir: "/data/c1/[::1]_3306/init/etc/mysql",
			Datadir: "/data/c1/[::1]_3306/var", SystemDir: "/data/c1/[::1]_3306/var/.system",
			Socket: "/data/c1/[::1]_3306/var/mysqld.sock", SSLDir: "/data/c1/[::1]_3306/init/etc/mysql/ssl"}, ""},
		{Params{Orchestrator: "opensvc"}, Layout{Confdir: "/etc/mysql", Datadir: "/var/lib/mysql", SystemDir: "/var/lib/mysql/.system",
			Socket: "/run/mysqld/mysqld.sock", SSLDir: "/etc/mysql/ssl"}, ""},
		{Params{Orchestrator: "slapos"}, Layout{}, "slapos-db-partitions entry: empty path"},
		{Params{Orchestrator: "slapos", Partition: "srv/p"}, Layout{}, "not absolute"},
		{Params{Orchestrator: "slapos", Partition: "/srv/my part"}, Layout{}, "cannot carry"},
	}
	for _, c := range cases {
		got, err := LayoutFor(c.p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: error %v, want %q", c.p, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v: %+v, %v; want %+v", c.p, got, err, c.want)
		}
	}
}

func TestParamsFromSettings(t *testing.T) {
	s := config.Defaults()
	s.DBServersHosts = "[2001:db8::5]:2099,[2001:db8::6]:2199"
	s.DBServersCredential = "repman:pw"
	s.ProvOrchestrator = "slapos"
	s.SlapOSDBPartitions = "/srv/slapgrid/slappart7,/srv/slapgrid/slappart8"
	s.ProvDBTags = slaposTags + ","
	s.ProvDBMemory = 512
	s.ProvDBDomain = 3
	p, err := ParamsFromSettings("cluster1", &s, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Partition != "/srv/slapgrid/slappart8" || p.Server.Host != "2001:db8::6" || p.Server.Port != 2199 ||
		p.User != "repman" || p.Password != "pw" || p.DomainID != 3 || p.Resources.MemoryMB != 512 ||
		len(p.Tags) != len(strings.Split(slaposTags, ",")) {
		t.Errorf("params %+v", p)
	}
	if _, err := ParamsFromSettings("cluster1", &s, 2); err == nil || !strings.Contains(err.Error(), "db-servers-hosts") {
		t.Errorf("k out of range: %v", err)
	}
	s.SlapOSDBPartitions = "/srv/slapgrid/slappart7"
	if _, err := ParamsFromSettings("cluster1", &s, 1); err == nil || !strings.Contains(err.Error(), "slapos-db-partitions") {
		t.Errorf("missing partition: %v", err)
	}
	s.ProvOrchestrator = "local"
	s.MonitoringDatadir = "/var/lib/replication-manager"
	p, err = ParamsFromSettings("cluster1", &s, 1)
	if err != nil || p.NodeDatadir != "/var/lib/replication-manager/cluster1/[2001:db8::6]_2199" {
		t.Errorf("local: %q, %v", p.NodeDatadir, err)
	}
	s.MonitoringBasedir = "/opt/rm"
	if p, _ = ParamsFromSettings("cluster1", &s, 0); p.NodeDatadir != "/opt/rm/data/cluster1/[2001:db8::5]_2099" {
		t.Errorf("local with basedir: %q", p.NodeDatadir)
	}
}

// goldenParams is a SlapOS database on IPv6, as the seed's cluster has them.
func goldenParams(orch string) Params {
	p := Params{
		Cluster: "cluster1", Server: ipv6.HostPort{Host: "2001:db8::5", Port: 2099}, ServerID: "db1234567890123",
		Orchestrator: orch, Tags: strings.Split(slaposTags, ","), Resources: DefaultResources(),
		User: "root", Password: `pa"ss\word`, Version: "1.2.3",
		TLS: &TLSFiles{CA: []byte("CA PEM\n"), ServerCert: []byte("CERT PEM\n"), ServerKey: []byte("KEY PEM\n")},
	}
	switch orch {
	case OrchestratorSlapOS:
		p.Partition = "/srv/slapgrid/slappart7"
	case OrchestratorLocal:
		p.NodeDatadir = "/var/lib/replication-manager/cluster1/[2001:db8::5]_2099"
	}
	return p
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated file (go test -update rewrites it):\n%s", file, got)
	}
}

func entryMap(t *testing.T, p Params) map[string]Entry {
	t.Helper()
	es, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Entry{}
	for _, e := range es {
		m[e.Path] = e
	}
	return m
}

func TestGolden(t *testing.T) {
	slapos := entryMap(t, goldenParams(OrchestratorSlapOS))
	for _, f := range []string{"01_default_memory.cnf", "01_default_path.cnf", "01_default_replication.cnf",
		"01_engine_innodb.cnf", "99_with_net_bind.cnf", "01_with_sec_ssl.cnf", "01_engine_mroonga.cnf"} {
		golden(t, "slapos/"+f, slapos["etc/mysql/replication-manager.d/"+f].Data)
	}
	golden(t, "slapos/my.cnf", slapos["etc/mysql/my.cnf"].Data)
	golden(t, "slapos/dbjob.cnf", slapos["etc/mysql/dbjob.cnf"].Data)
	local := entryMap(t, goldenParams(OrchestratorLocal))
	golden(t, "local/my.cnf", local["etc/mysql/my.cnf"].Data)
	golden(t, "local/01_default_path.cnf", local["etc/mysql/replication-manager.d/01_default_path.cnf"].Data)
}

func TestHeaderNamesGeneratorAndVersion(t *testing.T) {
	if h := Header("1.2.3", time.Time{}); h != "# Generated by replication-manager-pro 1.2.3\n" {
		t.Errorf("header %q", h)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if h := Header("1.2.3", at); h != "# Generated by replication-manager-pro 1.2.3 on 2025-01-02T03:04:05Z\n" {
		t.Errorf("header %q", h)
	}
	for path, e := range entryMap(t, goldenParams(OrchestratorSlapOS)) {
		if e.Kind == KindFile && !strings.HasSuffix(path, ".pem") && !bytes.HasPrefix(e.Data, []byte("# Generated by replication-manager-pro 1.2.3\n")) {
			t.Errorf("%s: no header", path)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	cases := []struct {
		f    func(*Params)
		want string
	}{
		{func(p *Params) { p.Tags = []string{"innodb", "bogus"} }, `unknown tag "bogus"`},
		{func(p *Params) { p.TLS = nil }, "tag ssl:"},
		{func(p *Params) { p.Server.Port = 0 }, "port"},
		{func(p *Params) { p.Resources.MemoryMB = -5 }, "prov-db-memory"},
		{func(p *Params) { p.ServerID = "dbabc" }, "server id"},
	}
	for _, c := range cases {
		p := goldenParams(OrchestratorSlapOS)
		c.f(&p)
		if _, err := Bundle(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

type tarEntry struct {
	typ    byte
	mode   int64
	target string
	data   []byte
}

func listTar(t *testing.T, b []byte) (map[string]tarEntry, []string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	m := map[string]tarEntry{}
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		m[h.Name] = tarEntry{typ: h.Typeflag, mode: h.Mode, target: h.Linkname, data: data}
		order = append(order, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: owner %d/%d %q, mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
	}
	return m, order
}

func TestBundleListing(t *testing.T) {
	p := goldenParams(OrchestratorSlapOS)
	b, err := Bundle(p)
	if err != nil {
		t.Fatal(err)
	}
	m, order := listTar(t, b)
	if !sort.StringsAreSorted(order) {
		t.Errorf("entries not sorted: %v", order)
	}
	want := map[string]struct {
		typ  byte
		mode int64
	}{
		"etc/mysql/":                            {tar.TypeDir, 0o755},
		"etc/mysql/conf.d/":                     {tar.TypeDir, 0o755},
		"etc/mysql/custom.d/":                   {tar.TypeDir, 0o755},
		"etc/mysql/ssl/":                        {tar.TypeDir, 0o750},
		"etc/mysql/replication-manager.d/":      {tar.TypeDir, 0o755},
		"etc/mysql/my.cnf":                      {tar.TypeReg, 0o644},
		"etc/mysql/dbjob.cnf":                   {tar.TypeReg, 0o600},
		"etc/mysql/ssl/ca-cert.pem":             {tar.TypeReg, 0o644},
		"etc/mysql/ssl/server-key.pem":          {tar.TypeReg, 0o600},
		"data/.system/":                         {tar.TypeDir, 0o750},
		"data/.system/innodb/redo/":             {tar.TypeDir, 0o750},
		"data/.system/innodb/undo/":             {tar.TypeDir, 0o750},
		"etc/mysql/conf.d/01_engine_innodb.cnf": {tar.TypeSymlink, 0o777},
	}
	for _, d := range SystemDirs {
		want["data/.system/"+d+"/"] = struct {
			typ  byte
			mode int64
		}{tar.TypeDir, 0o750}
	}
	for name, w := range want {
		e, ok := m[name]
		if !ok || e.typ != w.typ || e.mode != w.mode {
			t.Errorf("%s: %+v (present %v), want type %c mode %o", name, e, ok, w.typ, w.mode)
		}
	}
	// Every fragment is in replication-manager.d; conf.d holds exactly the active ones,
	// each a relative symlink to its fragment inside the tree.
	fragments, links := 0, 0
	set, _ := ParseTags(p.Tags)
	active := map[string]bool{}
	for _, n := range ActiveFragments(set) {
		active[n] = true
	}
	for name, e := range m {
		switch {
		case strings.HasPrefix(name, "etc/mysql/replication-manager.d/") && e.typ == tar.TypeReg:
			fragments++
			if e.mode != 0o644 {
				t.Errorf("%s: mode %o", name, e.mode)
			}
		case strings.HasPrefix(name, "etc/mysql/conf.d/") && e.typ == tar.TypeSymlink:
			links++
			base := path.Base(name)
			if !active[base] || e.target != "../replication-manager.d/"+base {
				t.Errorf("%s -> %s: not an active fragment's link", name, e.target)
			}
			resolved := path.Join(path.Dir(name), e.target)
			if tgt, ok := m[resolved]; !ok || tgt.typ != tar.TypeReg {
				t.Errorf("%s -> %s: target %s not a file of the bundle", name, e.target, resolved)
			}
		}
	}
	if fragments != len(templates) || links != len(active) {
		t.Errorf("%d fragments (want %d), %d links (want %d)", fragments, len(templates), links, len(active))
	}
	for _, n := range []string{"01_with_net_threadpool.cnf", "01_with_rep_semisync.cnf"} {
		if _, ok := m["etc/mysql/conf.d/"+n]; ok {
			t.Errorf("%s linked without its tag", n)
		}
		if _, ok := m["etc/mysql/replication-manager.d/"+n]; !ok {
			t.Errorf("%s not written", n)
		}
	}
	// Reproducible: same parameters, same bytes.
	if b2, _ := Bundle(p); !bytes.Equal(b, b2) {
		t.Error("two bundles of the same parameters differ")
	}
}

func TestDBJobCnfQuotingWithMyPrintDefaults(t *testing.T) {
	bin := realtest.LookPath(t, "my_print_defaults", "mariadb-client")
	for _, pw := range []string{"simple", `a"b\c`, "has#hash;semi", "  spaced  ", `'quoted'`, "tab\there"} {
		f := filepath.Join(t.TempDir(), "dbjob.cnf")
		if err := os.WriteFile(f, DBJobCnf("root", pw, "/p/var/mysqld.sock"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--defaults-file="+f, "client").Output()
		if err != nil {
			t.Fatal(err)
		}
		want := "--user=root\n--password=" + pw + "\n--socket=/p/var/mysqld.sock\n"
		if string(out) != want {
			t.Errorf("password %q: parsed as %q", pw, out)
		}
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	mk := func(entries ...Entry) []byte {
		var b bytes.Buffer
		gz := gzip.NewWriter(&b)
		tw := tar.NewWriter(gz)
		for _, e := range entries {
			h := &tar.Header{Name: e.Path, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.Data))}
			if e.Kind == KindSymlink {
				h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.Target, 0
			}
			_ = tw.WriteHeader(h)
			_, _ = tw.Write(e.Data)
		}
		_ = tw.Close()
		_ = gz.Close()
		return b.Bytes()
	}
	cases := map[string][]byte{
		"dotdot":        mk(Entry{Path: "../evil", Data: []byte("x")}),
		"absolute":      mk(Entry{Path: "/tmp/evil", Data: []byte("x")}),
		"escaping link": mk(Entry{Path: "etc/l", Kind: KindSymlink, Target: "../../x"}),
		"absolute link": mk(Entry{Path: "etc/l", Kind: KindSymlink, Target: "/etc"}),
		"beneath link":  mk(Entry{Path: "etc/l", Kind: KindSymlink, Target: "."}, Entry{Path: "etc/l/f", Data: []byte("x")}),
	}
	for name, b := range cases {
		if err := Unpack(bytes.NewReader(b), t.TempDir(), ""); err == nil {
			t.Errorf("%s: unpacked", name)
		}
	}
	// WriteTarGz refuses the same.
	if err := WriteTarGz(io.Discard, []Entry{{Path: "a", Kind: KindSymlink, Target: "../b"}}, time.Time{}); err == nil {
		t.Error("WriteTarGz wrote an escaping symlink")
	}
}

func TestUnpackLayout(t *testing.T) {
	part := t.TempDir()
	p := goldenParams(OrchestratorSlapOS)
	p.Partition = part
	b, err := Bundle(p)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(part, "var", "lib", "mysql")
	if err := Unpack(bytes.NewReader(b), part, data); err != nil {
		t.Fatal(err)
	}
	// Twice: an agent re-downloads the bundle over the previous one.
	if err := Unpack(bytes.NewReader(b), part, data); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(part, "etc", "mysql", "dbjob.cnf"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("dbjob.cnf: %v %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(data, ".system", "innodb", "redo")); err != nil || !st.IsDir() {
		t.Errorf("redo dir: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(part, "etc", "mysql", "conf.d", "99_with_net_bind.cnf"))
	if err != nil || !strings.Contains(string(got), "bind_address = 2001:db8::5\n") {
		t.Errorf("bind fragment through the link: %q, %v", got, err)
	}
}

// TestDocsListEveryTag keeps docs/configurator.md's tag table in step with the catalogue.
func TestDocsListEveryTag(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configurator.md"))
	if err != nil {
		t.Fatalf("docs/configurator.md is part of this repository: %v", err)
	}
	for _, tg := range Catalogue() {
		row := "| `" + tg.Name + "`"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/configurator.md: no row for tag %s", tg.Name)
		}
		if tg.Fragment != "" && !strings.Contains(string(doc), "`"+tg.Fragment+"`") {
			t.Errorf("docs/configurator.md: fragment %s of tag %s not named", tg.Fragment, tg.Name)
		}
	}
}
