package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writeTree writes files (relative path -> content) under a temp dir and
// returns the dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, path string, opts Options) *Config {
	t.Helper()
	cfg, err := Load(path, opts)
	if err != nil {
		t.Fatalf("Load(%s): unexpected problems:\n%v", path, err)
	}
	return cfg
}

// problemsOf loads and returns the problem lines (fails if Load succeeded).
func problemsOf(t *testing.T, path string, opts Options) []string {
	t.Helper()
	cfg, err := Load(path, opts)
	if err == nil {
		t.Fatalf("Load(%s): want problems, got none", path)
	}
	if cfg != nil {
		t.Errorf("Load returned a Config together with problems")
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems", err)
	}
	return strings.Split(err.Error(), "\n")
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func hasLineContaining(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

const goodHosts = `db-servers-hosts = "db1,db2"` + "\n"

func TestLoadSlapOSFixture(t *testing.T) {
	cfg := mustLoad(t, "testdata/slapos/config.toml", Options{})
	if got := cfg.Names(); strings.Join(got, ",") != "cluster1,cluster2" {
		t.Fatalf("clusters = %v", got)
	}
	wantFiles := []string{"testdata/slapos/config.toml",
		"testdata/slapos/cluster.d/config-cluster1.toml", "testdata/slapos/cluster.d/config-cluster2.toml"}
	if fmt.Sprint(cfg.Files) != fmt.Sprint(wantFiles) {
		t.Errorf("Files = %v, want %v", cfg.Files, wantFiles)
	}
	c1, ok := cfg.Cluster("CLUSTER1")
	if !ok {
		t.Fatal("cluster1 not found case-insensitively")
	}
	hosts, err := c1.Settings.Hosts()
	if err != nil || len(hosts) != 3 {
		t.Fatalf("Hosts() = %v, %v", hosts, err)
	}
	if hosts[1].Host != "2001:db8::11" || hosts[1].Port != 2199 || hosts[1].String() != "[2001:db8::11]:2199" {
		t.Errorf("hosts[1] = %+v", hosts[1])
	}
	s := &c1.Settings
	if s.ProvOrchestrator != "slapos" || s.MonitoringSaveConfig || !s.APIHTTPSBind || !s.SysbenchV1 {
		t.Errorf("[Default] values not inherited: %q %v %v %v", s.ProvOrchestrator, s.MonitoringSaveConfig, s.APIHTTPSBind, s.SysbenchV1)
	}
	if s.ProvDBBinaryBasedir != "/srv/slapgrid/slappart7/software/bin" {
		t.Errorf("deprecated db-servers-binary-path not mapped: %q", s.ProvDBBinaryBasedir)
	}
	if s.FailoverAutomatic() || s.FailoverLimit != 5 || s.SwitchoverWaitKill != 5000 || s.DBServersConnectTimeout != 1 {
		t.Errorf("failover settings: %v %d %d %d", s.FailoverAutomatic(), s.FailoverLimit, s.SwitchoverWaitKill, s.DBServersConnectTimeout)
	}
	if s.ProxySQLServersIPv6 != "[2001:db8::5]" || s.ProxySQLPort != 7032 {
		t.Errorf("proxysql: %q %d", s.ProxySQLServersIPv6, s.ProxySQLPort)
	}
	if f, sec, ok := c1.Origin("failover-limit"); !ok || sec != "cluster1" || !strings.HasSuffix(f, "config-cluster1.toml") {
		t.Errorf("Origin(failover-limit) = %q %q %v", f, sec, ok)
	}
	if _, _, ok := c1.Origin("haproxy-write-port"); ok {
		t.Errorf("a default value has an origin")
	}
	c2, _ := cfg.Cluster("cluster2")
	if !c2.Settings.FailoverAutomatic() || c2.Settings.FailoverLimit != 3 {
		t.Errorf("cluster2: automatic=%v limit=%d", c2.Settings.FailoverAutomatic(), c2.Settings.FailoverLimit)
	}
	if cfg.Default.DBServersHosts != "" || cfg.Default.ProvOrchestrator != "slapos" {
		t.Errorf("Default = hosts %q orchestrator %q", cfg.Default.DBServersHosts, cfg.Default.ProvOrchestrator)
	}
}

func TestTypoFixture(t *testing.T) {
	lines := problemsOf(t, "testdata/typo/config.toml", Options{})
	want := []string{
		`testdata/typo/config.toml: [cluster1] failover-limit: want an integer, got string "five"`,
		`testdata/typo/config.toml: [cluster1] failover-limt: unknown key; did you mean "failover-limit"?`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestPrecedence(t *testing.T) {
	// Each layer sets failover-limit to its rank; the highest present must win.
	layers := []struct{ table, value string }{
		{"saved-default", "1"}, {"Default", "2"}, {"saved-c1", "3"}, {"c1", "4"},
	}
	for n := 0; n <= len(layers); n++ {
		for _, withOverride := range []bool{false, true} {
			var b strings.Builder
			b.WriteString("[c1]\n" + goodHosts) // c1 exists even with no layer
			if n == len(layers) {
				b.WriteString("failover-limit = 4\n")
			}
			for _, l := range layers[:min(n, 3)] {
				fmt.Fprintf(&b, "[%s]\nfailover-limit = %s\n", l.table, l.value)
			}
			dir := writeTree(t, map[string]string{"config.toml": b.String()})
			opts := Options{}
			want := 5 // built-in default
			if n > 0 {
				fmt.Sscan(layers[n-1].value, &want)
			}
			if withOverride {
				opts.Overrides = map[string]string{"failover-limit": "9"}
				want = 9
			}
			cfg := mustLoad(t, filepath.Join(dir, "config.toml"), opts)
			c, _ := cfg.Cluster("c1")
			if c.Settings.FailoverLimit != want {
				t.Errorf("layers %d override %v: failover-limit = %d, want %d\n%s", n, withOverride, c.Settings.FailoverLimit, want, b.String())
			}
		}
	}
}

func TestPrecedenceOrderIndependentOfFileOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[c1]
failover-limit = 4
db-servers-hosts = "db1"
[saved-c1]
failover-limit = 3
[Default]
failover-limit = 2
failover-time-limit = 7
[saved-default]
failover-limit = 1
failover-max-slave-delay = 11
`})
	cfg := mustLoad(t, filepath.Join(dir, "config.toml"), Options{})
	c, _ := cfg.Cluster("c1")
	s := c.Settings
	if s.FailoverLimit != 4 || s.FailoverTimeLimit != 7 || s.FailoverMaxSlaveDelay != 11 {
		t.Errorf("got limit %d time-limit %d delay %d", s.FailoverLimit, s.FailoverTimeLimit, s.FailoverMaxSlaveDelay)
	}
	if cfg.Default.FailoverLimit != 2 || cfg.Default.FailoverMaxSlaveDelay != 11 {
		t.Errorf("Default: limit %d delay %d", cfg.Default.FailoverLimit, cfg.Default.FailoverMaxSlaveDelay)
	}
}

func TestInclude(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"etc/config.toml":          "[Default]\ninclude = \"cluster.d\"\nfailover-limit = 2\n",
		"etc/cluster.d/b.toml":     "[beta]\n" + goodHosts,
		"etc/cluster.d/a.toml":     "[alpha]\n" + goodHosts + "failover-limit = 3\n",
		"etc/cluster.d/notes.md":   "[ignored]\n",
		"etc/cluster.d/sub/x.toml": "[ignored2]\n" + goodHosts,
	})
	cfg := mustLoad(t, filepath.Join(dir, "etc/config.toml"), Options{})
	if got := strings.Join(cfg.Names(), ","); got != "alpha,beta" {
		t.Fatalf("clusters %s", got)
	}
	if len(cfg.Files) != 3 || !strings.HasSuffix(cfg.Files[1], "a.toml") || !strings.HasSuffix(cfg.Files[2], "b.toml") {
		t.Errorf("files %v", cfg.Files)
	}
	a, _ := cfg.Cluster("alpha")
	b, _ := cfg.Cluster("beta")
	if a.Settings.FailoverLimit != 3 || b.Settings.FailoverLimit != 2 {
		t.Errorf("limits %d %d", a.Settings.FailoverLimit, b.Settings.FailoverLimit)
	}

	// absolute include path
	abs := writeTree(t, map[string]string{"config.toml": fmt.Sprintf("[Default]\ninclude = %q\n", filepath.Join(dir, "etc/cluster.d"))})
	if cfg := mustLoad(t, filepath.Join(abs, "config.toml"), Options{}); len(cfg.Clusters) != 2 {
		t.Errorf("absolute include: %v", cfg.Names())
	}
}

func TestIncludeProblems(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"config.toml":      "[Default]\ninclude = \"d\"\n[one]\n" + goodHosts,
		"d/1.toml":         "[ONE]\n" + goodHosts,
		"d/2.toml":         "[two]\n" + goodHosts + "include = \"x\"\n",
		"missing/c.toml":   "[Default]\ninclude = \"nope\"\n",
		"nested/c.toml":    "[c]\n" + goodHosts + "include = \"d\"\n",
		"same/config.toml": "[c]\n" + goodHosts + "[C]\n" + goodHosts,
	})
	main := filepath.Join(dir, "config.toml")
	lines := problemsOf(t, main, Options{})
	if !hasLine(lines, filepath.Join(dir, "d/1.toml")+": [ONE] table defined twice: also [one] in "+main) {
		t.Errorf("duplicate cluster across files not reported with both files:\n%s", strings.Join(lines, "\n"))
	}
	if !hasLine(lines, filepath.Join(dir, "d/2.toml")+": [two] include: include is only read from [Default] of the main file") {
		t.Errorf("include in included file:\n%s", strings.Join(lines, "\n"))
	}
	lines = problemsOf(t, filepath.Join(dir, "missing/c.toml"), Options{})
	if !hasLineContaining(lines, "missing/c.toml: [Default] include: cannot read include directory", "nope") {
		t.Errorf("missing include dir:\n%s", strings.Join(lines, "\n"))
	}
	lines = problemsOf(t, filepath.Join(dir, "nested/c.toml"), Options{})
	if !hasLineContaining(lines, "[c] include: include is only read from [Default]") {
		t.Errorf("include in cluster table:\n%s", strings.Join(lines, "\n"))
	}
	lines = problemsOf(t, filepath.Join(dir, "same/config.toml"), Options{})
	if !hasLineContaining(lines, "table defined twice", "in the same file") {
		t.Errorf("case-variant tables:\n%s", strings.Join(lines, "\n"))
	}
}

func TestCaseInsensitive(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[default]
Failover-Limit = 3
DB-SERVERS-HOSTS = "db1,db2"
[Cluster1]
MONITORING-TICKER = 0.5
[SAVED-cluster2]
failover-limit = 4
`})
	cfg := mustLoad(t, filepath.Join(dir, "config.toml"), Options{Clusters: []string{"CLUSTER1,cluster2"}})
	if got := strings.Join(cfg.Names(), ","); got != "Cluster1,cluster2" {
		t.Fatalf("clusters %s", got)
	}
	c1, _ := cfg.Cluster("cluster1")
	if c1.Section != "Cluster1" || c1.Settings.FailoverLimit != 3 || c1.Settings.MonitoringTickerDuration() != 500*time.Millisecond {
		t.Errorf("cluster1: section %q limit %d ticker %v", c1.Section, c1.Settings.FailoverLimit, c1.Settings.MonitoringTickerDuration())
	}
	c2, _ := cfg.Cluster("CLUSTER2")
	if c2.Section != "SAVED-cluster2" || c2.Settings.FailoverLimit != 4 {
		t.Errorf("cluster2 (saved only): section %q limit %d", c2.Section, c2.Settings.FailoverLimit)
	}
	// two spellings of one key in one table
	dir = writeTree(t, map[string]string{"config.toml": "[c]\n" + goodHosts + "failover-limit = 1\nFAILOVER-LIMIT = 2\n"})
	lines := problemsOf(t, filepath.Join(dir, "config.toml"), Options{})
	if !hasLineContaining(lines, "[c] failover-limit: set twice in this table") {
		t.Errorf("case duplicate:\n%s", strings.Join(lines, "\n"))
	}
}

func TestAliases(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[Default]
hosts = "db1:3306,db2:3306"
user = "root:pw"
[c1]
prefmaster = "db2:3306"
interactive = false
maxscale-host = "mx1"
[c2]
interactive = true
db-servers-hosts = "db3"
`})
	cfg := mustLoad(t, filepath.Join(dir, "config.toml"), Options{})
	c1, _ := cfg.Cluster("c1")
	s := c1.Settings
	if s.DBServersHosts != "db1:3306,db2:3306" || s.DBServersCredential != "root:pw" || s.DBServersPreferedMaster != "db2:3306" || s.MaxScaleServers != "mx1" {
		t.Errorf("aliases not mapped: %q %q %q", s.DBServersHosts, s.DBServersPreferedMaster, s.MaxScaleServers)
	}
	if !s.FailoverAutomatic() {
		t.Errorf("interactive = false should mean failover-mode automatic, got %q", s.FailoverMode)
	}
	c2, _ := cfg.Cluster("c2")
	if c2.Settings.FailoverMode != "manual" || c2.Settings.DBServersHosts != "db3" {
		t.Errorf("c2: mode %q hosts %q (canonical key in cluster must beat alias in [Default])", c2.Settings.FailoverMode, c2.Settings.DBServersHosts)
	}
	dir = writeTree(t, map[string]string{"config.toml": "[c]\nhosts = \"db1\"\ndb-servers-hosts = \"db2\"\n"})
	lines := problemsOf(t, filepath.Join(dir, "config.toml"), Options{})
	if !hasLineContaining(lines, "[c] ", "set twice in this table", `"db-servers-hosts"`) {
		t.Errorf("alias + key in one table:\n%s", strings.Join(lines, "\n"))
	}
	// override by alias name
	cfg = mustLoad(t, filepath.Join(writeTree(t, map[string]string{"c.toml": "[c]\n" + goodHosts}), "c.toml"),
		Options{Overrides: map[string]string{"maxdelay": "12"}})
	if cfg.Clusters[0].Settings.FailoverMaxSlaveDelay != 12 {
		t.Errorf("override by alias: %d", cfg.Clusters[0].Settings.FailoverMaxSlaveDelay)
	}
}

func TestDefaultClusterAndFilter(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"only/config.toml": "[Default]\n" + goodHosts,
		"two/config.toml":  "[a]\n" + goodHosts + "[b]\n" + goodHosts,
	})
	cfg := mustLoad(t, filepath.Join(dir, "only/config.toml"), Options{})
	if len(cfg.Clusters) != 1 || cfg.Clusters[0].Name != DefaultClusterName || cfg.Clusters[0].Section != "Default" {
		t.Fatalf("clusters %+v", cfg.Names())
	}
	cfg = mustLoad(t, filepath.Join(dir, "two/config.toml"), Options{Clusters: []string{"B"}})
	if strings.Join(cfg.Names(), ",") != "b" {
		t.Errorf("filter: %v", cfg.Names())
	}
	lines := problemsOf(t, filepath.Join(dir, "two/config.toml"), Options{Clusters: []string{"a", "zz"}})
	if !hasLine(lines, `command line: cluster: unknown cluster "zz"; the configuration defines: a, b`) {
		t.Errorf("unknown cluster:\n%s", strings.Join(lines, "\n"))
	}
}

func TestOverrides(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": "[Default]\nfailover-limit = 2\n[a]\n" + goodHosts + "failover-limit = 3\n[b]\n" + goodHosts})
	path := filepath.Join(dir, "config.toml")
	cfg := mustLoad(t, path, Options{Overrides: map[string]string{"failover-limit": "8", "monitoring-ticker": "0.2"}})
	for _, c := range cfg.Clusters {
		if c.Settings.FailoverLimit != 8 || c.Settings.MonitoringTickerDuration() != 200*time.Millisecond {
			t.Errorf("%s: %d %v", c.Name, c.Settings.FailoverLimit, c.Settings.MonitoringTickerDuration())
		}
		if f, _, _ := c.Origin("failover-limit"); f != CommandLine {
			t.Errorf("origin %q", f)
		}
	}
	if cfg.Default.FailoverLimit != 8 {
		t.Errorf("Default not overridden")
	}
	lines := problemsOf(t, path, Options{Overrides: map[string]string{"failover-limt": "1", "failover-limit": "x", "monitoring-ticker": "0", "proxysql-password": "notsecretanymore:"}})
	for _, want := range []string{
		`command line: failover-limt: unknown key; did you mean "failover-limit"?`,
		`command line: failover-limit: want an integer, got string "x"`,
		`command line: monitoring-ticker: must be between 0.05 and 3600, got 0`,
	} {
		if !hasLine(lines, want) {
			t.Errorf("missing %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

func TestFlags(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("config", "", "")
	AddFlags(fs)
	for _, k := range Keys() {
		if fs.Lookup(k.Name) == nil {
			t.Fatalf("no flag for %s", k.Name)
		}
	}
	if f := fs.Lookup("monitoring-ticker"); f.Value.Type() != "float64" || f.DefValue != "2" {
		t.Errorf("monitoring-ticker flag %s %s", f.Value.Type(), f.DefValue)
	}
	if f := fs.Lookup("db-servers-credential"); f.DefValue != MaskedValue {
		t.Errorf("secret default shown in help: %q", f.DefValue)
	}
	if err := fs.Parse([]string{"--failover-limit=7", "--monitoring-ticker", "0.2", "--config", "x", "--autorejoin=false"}); err != nil {
		t.Fatal(err)
	}
	got := Overrides(fs)
	want := map[string]string{"failover-limit": "7", "monitoring-ticker": "0.2", "autorejoin": "false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Overrides = %v, want %v", got, want)
	}
	if err := fs.Parse([]string{"--failover-limit=abc"}); err == nil {
		t.Errorf("typed int flag accepted abc")
	}
}

func TestTypes(t *testing.T) {
	cases := []struct {
		line    string
		check   func(s *Settings) bool
		problem string // substring; "" = must load
	}{
		{`failover-limit = "5"`, func(s *Settings) bool { return s.FailoverLimit == 5 }, ""},
		{`failover-limit = 6.0`, func(s *Settings) bool { return s.FailoverLimit == 6 }, ""},
		{`failover-limit = 6.5`, nil, "failover-limit: want an integer, got float 6.5"},
		{`failover-limit = true`, nil, "failover-limit: want an integer, got boolean true"},
		{`failover-limit = [1]`, nil, "failover-limit: want an integer, got an array"},
		{`failover-limit = 99999999999`, nil, "must be between 0 and 100000, got 99999999999"},
		{`autorejoin = "false"`, func(s *Settings) bool { return !s.Autorejoin }, ""},
		{`autorejoin = "yes"`, nil, `autorejoin: want a boolean (true or false), got string "yes"`},
		{`autorejoin = 1`, nil, "autorejoin: want a boolean (true or false), got integer 1"},
		{`monitoring-ticker = 0.2`, func(s *Settings) bool { return s.MonitoringTickerDuration() == 200*time.Millisecond }, ""},
		{`monitoring-ticker = 1`, func(s *Settings) bool { return s.MonitoringTickerDuration() == time.Second }, ""},
		{`monitoring-ticker = "0.25"`, func(s *Settings) bool { return s.MonitoringTickerDuration() == 250*time.Millisecond }, ""},
		{`monitoring-ticker = "nan"`, nil, "monitoring-ticker: want a number"},
		{`monitoring-ticker = inf`, nil, "monitoring-ticker: want a finite number"},
		{`title = 42`, func(s *Settings) bool { return s.Title == "42" }, ""},
		{`prov-db-tags = ["innodb", "row"]`, func(s *Settings) bool { return s.ProvDBTags == "innodb,row" }, ""},
		{`prov-db-tags = [["x"]]`, nil, "prov-db-tags: want a string or an array of scalars"},
		{`title = 1979-05-27`, nil, "title: want a string"},
		{`sub = { a = 1 }`, nil, "sub: unexpected sub-table"},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"c.toml": "[c]\n" + goodHosts + c.line + "\n"})
			cfg, err := Load(filepath.Join(dir, "c.toml"), Options{})
			if c.problem == "" {
				if err != nil {
					t.Fatalf("problems: %v", err)
				}
				if !c.check(&cfg.Clusters[0].Settings) {
					t.Errorf("wrong value: %v", cfg.Clusters[0].Settings.Changed())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Errorf("got %v, want a problem containing %q", err, c.problem)
			}
		})
	}
}

func TestFileProblems(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"syntax.toml":     "[Default]\nfailover-limit = 3\n\n[c1\nx = 1\n",
		"toplevel.toml":   "failover-limit = 3\n[c]\n" + goodHosts,
		"emptysaved.toml": "[saved-]\n" + goodHosts,
	})
	lines := problemsOf(t, filepath.Join(dir, "syntax.toml"), Options{})
	if len(lines) != 1 || !strings.HasPrefix(lines[0], filepath.Join(dir, "syntax.toml")+": line 4, column ") || !strings.Contains(lines[0], "TOML syntax error") {
		t.Errorf("syntax error: %q", lines)
	}
	lines = problemsOf(t, filepath.Join(dir, "toplevel.toml"), Options{})
	if !hasLineContaining(lines, "toplevel.toml: failover-limit: key outside any table") {
		t.Errorf("top-level key: %q", lines)
	}
	lines = problemsOf(t, filepath.Join(dir, "emptysaved.toml"), Options{})
	if !hasLineContaining(lines, "[saved-] empty cluster name") {
		t.Errorf("saved-: %q", lines)
	}
	lines = problemsOf(t, filepath.Join(dir, "absent.toml"), Options{})
	if !hasLineContaining(lines, "absent.toml: cannot read: no such file or directory") {
		t.Errorf("absent: %q", lines)
	}
}

func TestAllProblemsCollected(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[Default]
failover-mode = "auto"
[a]
db-servers-hosts = "db1,[::1"
log-level = 9
[b]
db-servers-hosts = ""
`})
	lines := problemsOf(t, filepath.Join(dir, "config.toml"), Options{})
	for _, want := range []string{
		"[Default] failover-mode: must be manual or automatic",
		"[a] db-servers-hosts: bad host list",
		"[a] log-level: must be between 0 and 7, got 9",
		"[b] db-servers-hosts: no database hosts",
	} {
		if !hasLineContaining(lines, want) {
			t.Errorf("missing %q", want)
		}
	}
	// the [Default] problem is inherited by a and b but reported once
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "failover-mode") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("failover-mode reported %d times:\n%s", n, strings.Join(lines, "\n"))
	}
}

func TestSuggest(t *testing.T) {
	cases := map[string]string{
		"failover-limt":          `; did you mean "failover-limit"?`,
		"Failover-Limt":          `; did you mean "failover-limit"?`,
		"db-server-hosts":        `; did you mean "db-servers-hosts"?`,
		"failover-lim":           `; did you mean "failover-limit"?`,
		"proxysql-pasword":       `; did you mean "proxysql-password"?`,
		"prov-orchestrater":      `; did you mean "prov-orchestrator"?`,
		"xyzzy-plugh-frobnicate": "",
		"":                       "",
	}
	for in, want := range cases {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func baseSettings() Settings {
	s := Defaults()
	s.DBServersHosts = "db1:3306,[2001:db8::1]:3307"
	return s
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		mod     func(s *Settings)
		key     string
		message string // substring
	}{
		{"bad host", func(s *Settings) { s.DBServersHosts = "db1,[2001:db8::1" }, "db-servers-hosts", "2001:db8::1"},
		{"empty hosts", func(s *Settings) { s.DBServersHosts = "" }, "db-servers-hosts", "no database hosts"},
		{"bad ignored host", func(s *Settings) { s.DBServersIgnoredHosts = "db1:99999999" }, "db-servers-ignored-hosts", "bad host list"},
		{"bad proxysql ipv6", func(s *Settings) { s.ProxySQLServersIPv6 = "[zz]" }, "proxysql-servers-ipv6", "bad host list"},
		{"prefered not in hosts", func(s *Settings) { s.DBServersPreferedMaster = "db9:3306" }, "db-servers-prefered-master", "db9:3306 is not in db-servers-hosts"},
		{"failover-mode", func(s *Settings) { s.FailoverMode = "auto" }, "failover-mode", `must be manual or automatic, got "auto"`},
		{"orchestrator", func(s *Settings) { s.ProvOrchestrator = "docker" }, "prov-orchestrator", `must be one of local, slapos, onpremise, opensvc, kube, got "docker"`},
		{"ticker zero", func(s *Settings) { s.MonitoringTicker = 0 }, "monitoring-ticker", "must be between 0.05 and 3600, got 0"},
		{"ticker negative", func(s *Settings) { s.MonitoringTicker = -1 }, "monitoring-ticker", "must be between 0.05 and 3600, got -1"},
		{"negative count", func(s *Settings) { s.FailoverLimit = -1 }, "failover-limit", "must be between 0 and 100000, got -1"},
		{"negative timeout", func(s *Settings) { s.DBServersConnectTimeout = -3 }, "db-servers-connect-timeout", "must be between 1 and 3600, got -3"},
		{"negative float", func(s *Settings) { s.ProvDBDiskIOPSLatency = -0.1 }, "prov-db-disk-iops-latency", "must be between 0 and 60, got -0.1"},
		{"port too big", func(s *Settings) { s.ProxySQLPort = 70000 }, "proxysql-port", "must be between 1 and 65535, got 70000"},
		{"port list", func(s *Settings) { s.SchedulerDBServersReceiverPorts = "4444,x" }, "scheduler-db-servers-receiver-ports", `not a port number (1-65535): "x"`},
		{"credential", func(s *Settings) { s.DBServersCredential = "rootonly" }, "db-servers-credential", "want user:password"},
		{"credential empty user", func(s *Settings) { s.ReplicationCredential = ":pw" }, "replication-credential", "want user:password"},
		{"credential list", func(s *Settings) { s.APICredentials = "admin:a,bob" }, "api-credentials", "entry 2: want user:password"},
		{"external list", func(s *Settings) { s.APICredentialsExternal = "x" }, "api-credentials-external", "entry 1: want user:password"},
		{"cron 5 fields", func(s *Settings) { s.SchedulerDBServersLogsCron = "0 * * * *" }, "scheduler-db-servers-logs-cron", "not a cron schedule"},
		{"cron garbage", func(s *Settings) { s.SchedulerDBServersOptimizeCron = "every day" }, "scheduler-db-servers-optimize-cron", "not a cron schedule"},
		{"log-level", func(s *Settings) { s.LogLevel = 8 }, "log-level", "between 0 and 7"},
		{"slapos partitions", func(s *Settings) { s.SlapOSDBPartitions = "/a,/b,/c" }, "slapos-db-partitions", "3 partitions for 2 db-servers-hosts"},
	}
	base := baseSettings()
	if ps := Validate(&base); len(ps) != 0 {
		t.Fatalf("base settings have problems: %v", Problems(ps))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := baseSettings()
			c.mod(&s)
			ps := Validate(&s)
			found := false
			for _, p := range ps {
				if p.Key == c.key && strings.Contains(p.Message, c.message) {
					found = true
				}
			}
			if !found {
				t.Errorf("want %s: ...%s..., got %v", c.key, c.message, Problems(ps))
			}
		})
	}
	// accepted forms
	ok := []func(s *Settings){
		func(s *Settings) { s.DBServersPreferedMaster = "[2001:DB8::1]:3307" },
		func(s *Settings) { s.DBServersPreferedMaster = "db1" }, // default port 3306
		func(s *Settings) { s.OnpremiseSSHCredential = "root:" },
		func(s *Settings) { s.DBServersCredential = "u:p:with:colons" },
		func(s *Settings) { s.APICredentialsExternal = "" },
		func(s *Settings) { s.SchedulerDBServersLogsCron = "@every 1h" },
		func(s *Settings) { s.SlapOSDBPartitions = "/a,/b" },
		func(s *Settings) { s.FailoverMode = "automatic" },
		func(s *Settings) { s.MonitoringTicker = 0.1 },
	}
	for i, mod := range ok {
		s := baseSettings()
		mod(&s)
		if ps := Validate(&s); len(ps) != 0 {
			t.Errorf("accepted form %d: %v", i, Problems(ps))
		}
	}
}

func TestHelpers(t *testing.T) {
	s := baseSettings()
	if s.FailoverAutomatic() {
		t.Error("default failover-mode must be manual")
	}
	s.FailoverMode = "automatic"
	if !s.FailoverAutomatic() {
		t.Error("automatic")
	}
	c, err := s.DBCredential()
	if err != nil || c.User != "root" || c.Password != "mariadb" {
		t.Errorf("DBCredential %v %v", c.User, err)
	}
	if fmt.Sprint(c) != MaskedValue || fmt.Sprintf("%+v %#v", c, c) != MaskedValue+" "+MaskedValue {
		t.Errorf("credential printed: %v", c)
	}
	s.APICredentialsExternal = "ext:e1, ext2:e2"
	users, err := s.APIUsers()
	if err != nil || len(users) != 3 || users[2].User != "ext2" || users[2].Password != "e2" {
		t.Errorf("APIUsers %d %v", len(users), err)
	}
	s.ProxySQLServers = "10.0.0.1, [2001:db8::5]:7000"
	px, err := s.ProxySQLHosts()
	if err != nil || len(px) != 2 || px[0].Port != 6032 || px[1].Port != 7000 {
		t.Errorf("ProxySQLHosts %v %v", px, err)
	}
	if l := s.List("prov-proxy-tags"); len(l) != 4 || l[0] != "masterslave" {
		t.Errorf("List %v", l)
	}
	if err := s.Set("maxdelay", "7"); err != nil || s.FailoverMaxSlaveDelay != 7 {
		t.Errorf("Set alias: %v", err)
	}
	if err := s.Set("nope-key", "7"); err == nil {
		t.Error("Set unknown key")
	}
}

// secrets used by the masking tests: none may ever be printed.
var secrets = []string{"Slap0sAdminSecret", "ResticRepoSecret", "SmtpSecretPw", "DbCluster1Secret", "ProxyAdminSecret", "DbCluster2Secret"}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s leaks secret %q:\n%s", what, s, text)
		}
	}
}

func TestSecretMasking(t *testing.T) {
	cfg := mustLoad(t, "testdata/slapos/config.toml", Options{})
	c1, _ := cfg.Cluster("cluster1")
	s := c1.Settings
	if s.DBServersCredential != "repman:DbCluster1Secret" {
		t.Fatalf("fixture changed: %q", s.DBServersCredential)
	}
	js, _ := json.Marshal(cfg)
	var tomlOut strings.Builder
	cfg.WriteTOML(&tomlOut, false)
	forms := map[string]string{
		"String":      s.String(),
		"%v":          fmt.Sprintf("%v", s),
		"%+v":         fmt.Sprintf("%+v", s),
		"%s":          fmt.Sprintf("%s", s),
		"%#v":         fmt.Sprintf("%#v", s),
		"%v pointer":  fmt.Sprintf("%v", &s),
		"%+v cluster": fmt.Sprintf("%+v", *c1),
		"%+v config":  fmt.Sprintf("%+v", cfg),
		"%#v config":  fmt.Sprintf("%#v", *cfg),
		"json":        string(js),
		"WriteTOML":   tomlOut.String(),
		"Display":     s.Display("proxysql-password") + s.Display("mail-smtp-password") + s.Display("api-credentials"),
	}
	for what, text := range forms {
		assertNoSecret(t, what, text)
	}
	for _, key := range []string{"db-servers-credential", "replication-credential", "api-credentials", "proxysql-password",
		"backup-restic-password", "mail-smtp-password"} {
		line := key + ` = "` + MaskedValue + `"`
		if !strings.Contains(tomlOut.String(), line) {
			t.Errorf("WriteTOML lacks %q", line)
		}
	}
	if !strings.Contains(forms["%v"], `db-servers-hosts = "[2001:db8::10]:2099,[2001:db8::11]:2199,[2001:db8::12]:2299"`) {
		t.Errorf("String() lacks hosts:\n%s", forms["%v"])
	}
	// an empty secret shows empty; a non-secret shows its value
	if Mask("api-credentials-external", "") != "" || Mask("proxysql-user", "external") != "external" || Mask("onpremise-ssh-credential", "root:") != MaskedValue {
		t.Error("Mask")
	}
	for _, k := range []string{"api-credentials-external", "backup-restic-password", "mail-smtp-password", "maxscale-pass", "db-servers-credential", "api-credentials", "onpremise-ssh-credential"} {
		if !IsSecret(k) {
			t.Errorf("%s is not secret", k)
		}
	}
	for _, k := range []string{"api-token-timeout", "api-credentials-acl-allow", "proxysql-user", "db-servers-hosts"} {
		if IsSecret(k) {
			t.Errorf("%s is secret", k)
		}
	}
}

func TestSecretsNotInProblems(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[c]
db-servers-hosts = "db1"
db-servers-credential = "DbCluster1Secret"
replication-credential = ["ProxyAdminSecret", 1]
api-credentials = "admin:x,Slap0sAdminSecret"
api-credentials-external = { a = "SmtpSecretPw" }
proxysql-password = 1979-05-27T07:32:00Z
`})
	_, err := Load(filepath.Join(dir, "config.toml"), Options{Overrides: map[string]string{
		"mail-smtp-password": "ResticRepoSecret", "onpremise-ssh-credential": "DbCluster2Secret"}})
	if err == nil {
		t.Fatal("want problems")
	}
	assertNoSecret(t, "problems", err.Error())
	for _, k := range []string{"db-servers-credential", "replication-credential", "api-credentials: entry 2", "onpremise-ssh-credential", "proxysql-password: want a string, got a secret value"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("problems lack %q:\n%v", k, err)
		}
	}
}

func TestDefaultsMatchSpec(t *testing.T) {
	// A sample of repman-compat.md H.2, A.2, C.3, C.5 defaults.
	want := map[string]string{
		"monitoring-ticker":                         "2",
		"monitoring-save-config":                    "true",
		"log-level":                                 "3",
		"db-servers-credential":                     "root:mariadb",
		"db-servers-read-timeout":                   "3600",
		"failover-mode":                             "manual",
		"failover-limit":                            "5",
		"failover-falsepositive-heartbeat-timeout":  "3",
		"switchover-wait-kill":                      "5000",
		"proxysql-admin-port":                       "6032",
		"haproxy-servers":                           "127.0.0.1",
		"prov-orchestrator":                         "onpremise",
		"prov-db-disk-iops-latency":                 "0.002",
		"prov-db-tags":                              "semisync,row,innodb,noquerycache,threadpool,slow,pfs,docker,linux,readonly,diskmonitor,sqlerror,compressbinlog",
		"prov-db-memory-shared-pct":                 "threads:16,innodb:60,myisam:10,aria:10,rocksdb:1,tokudb:1,s3:1,archive:1,querycache:0",
		"api-credentials-acl-allow":                 "admin:global cluster proxy db prov,dba:cluster proxy db,foo:",
		"api-credentials":                           "admin:repman",
		"scheduler-db-servers-logical-backup-cron":  "0 0 1 * * 6",
		"scheduler-db-servers-physical-backup-cron": "0 0 0 * * 0-4",
		"scheduler-db-servers-logs-cron":            "0 0/10 * * * *",
		"scheduler-db-servers-optimize-cron":        "0 0 3 1 * 5",
		"mail-smtp-addr":                            "localhost:25",
	}
	d := Defaults()
	for k, v := range want {
		if got, ok := d.Text(k); !ok || got != v {
			t.Errorf("default %s = %q, want %q", k, got, v)
		}
	}
	if ps := Validate(&d); len(ps) != 1 || ps[0].Key != "db-servers-hosts" {
		t.Errorf("defaults should only lack db-servers-hosts: %v", Problems(ps))
	}
}
