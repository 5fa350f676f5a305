package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Issue 11, item 6: cluster names climbing out of the data directory, FIFOs and
// devices read as configuration files, numbers without bounds. Each test first
// writes the hostile configuration the issue describes, then checks that Load
// refuses it with a problem naming the file, the table and the key.

const goodHostsLine = "db-servers-hosts = \"db1\"\n"

// loadWithin runs Load in a goroutine and fails the test when it does not
// return within d: a FIFO read as a file blocks forever.
func loadWithin(t *testing.T, d time.Duration, path string) (*Config, error) {
	t.Helper()
	type result struct {
		cfg *Config
		err error
	}
	ch := make(chan result, 1)
	go func() {
		cfg, err := Load(path, Options{})
		ch <- result{cfg, err}
	}()
	select {
	case r := <-ch:
		return r.cfg, r.err
	case <-time.After(d):
		t.Fatalf("Load(%s) still running after %v (blocked on a FIFO?)", path, d)
		return nil, nil
	}
}

// loadProblems is loadWithin expecting problems, returned as lines.
func loadProblems(t *testing.T, d time.Duration, path string) []string {
	t.Helper()
	cfg, err := loadWithin(t, d, path)
	return problemLines(t, cfg, err)
}

// problemLines returns the lines of a Problems error, failing on a Config or on
// another error type.
func problemLines(t *testing.T, cfg *Config, err error) []string {
	t.Helper()
	if err == nil || cfg != nil {
		t.Fatalf("want problems and no config, got cfg=%v err=%v", cfg != nil, err)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems", err)
	}
	return strings.Split(err.Error(), "\n")
}

// apiClusterName is the rule of the API's add-cluster route (api/settings.go)
// when this test was written; ValidateClusterName must accept no more than it,
// and refuse ".." on top.
var apiClusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func TestValidateClusterName(t *testing.T) {
	long := strings.Repeat("a", MaxClusterNameLen)
	good := []string{"cluster1", "Default", "c", "my.cluster-2_x", "0", long, "a.b"}
	bad := map[string]string{
		"":                   "empty cluster name",
		"../../evilcluster":  "must start with a letter or a digit",
		"a/b":                `holds '/'`,
		`a\b`:                `holds '\\'`,
		"a\x00b":             `holds '\x00'`,
		"a..b":               `holds ".."`,
		"evil/..":            `holds '/'`,
		".hidden":            "must start with a letter or a digit",
		"-x":                 "must start with a letter or a digit",
		"_x":                 "must start with a letter or a digit",
		long + "a":           "too long: 65 bytes, at most 64",
		"a b":                `holds ' '`,
		"a\nb":               `holds '\n'`,
		"caf\u00e9":          `holds '\u00e9'`,
		"a\xffb":             `holds '\ufffd'`,
		"x:y":                `holds ':'`,
		`"quoted"`:           `holds '"'`,
		"a%2f..%2fb":         `holds '%'`,
		"saved-default\r\n/": `holds '\r'`,
	}
	for _, n := range good {
		if err := ValidateClusterName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
		if !apiClusterName.MatchString(n) {
			t.Errorf("%q accepted but the API's rule refuses it", n)
		}
	}
	for n, want := range bad {
		err := ValidateClusterName(n)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", n, err, want)
		}
	}
	// never more permissive than the API's rule, on every short ASCII name
	alphabet := "aZ09_.-/\\ \x00:"
	var names []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		names = append(names, prefix)
		if n == 0 {
			return
		}
		for _, r := range alphabet {
			gen(prefix+string(r), n-1)
		}
	}
	gen("", 3)
	for _, n := range names {
		ours := ValidateClusterName(n) == nil
		api := apiClusterName.MatchString(n) && !strings.Contains(n, "..")
		if ours != api {
			t.Errorf("%q: ValidateClusterName ok=%v, API rule (without \"..\") ok=%v", n, ours, api)
		}
	}
}

func TestEvilClusterNamesRefused(t *testing.T) {
	cases := []struct{ table, shown, want string }{
		{`"../../evilcluster"`, "../../evilcluster", "must start with a letter or a digit"},
		{`"saved-../../evilcluster"`, "saved-../../evilcluster", "must start with a letter or a digit"},
		{`"a/b"`, "a/b", `holds '/'`},
		{`'a\b'`, `a\b`, `holds '\\'`},
		{`"a\u0000b"`, `"a\x00b"`, `holds '\x00'`},
		{`"a..b"`, "a..b", `holds ".."`},
		{`".hidden"`, ".hidden", "must start with a letter or a digit"},
		{`""`, "", "empty cluster name"},
		{`"` + strings.Repeat("x", 200) + `"`, `"` + strings.Repeat("x", maxShownName) + `"...`, "too long: 200 bytes, at most 64"},
		{`"a\nb"`, `"a\nb"`, `holds '\n'`},
	}
	for _, c := range cases {
		t.Run(c.shown, func(t *testing.T) {
			dir := writeTree(t, map[string]string{
				"config.toml":           "[Default]\ninclude = \"cluster.d\"\n[ok]\n" + goodHostsLine,
				"cluster.d/evil.toml":   "[" + c.table + "]\n" + goodHostsLine,
				"main-only/config.toml": "[" + c.table + "]\n" + goodHostsLine,
			})
			for _, f := range []string{filepath.Join(dir, "cluster.d", "evil.toml"), filepath.Join(dir, "main-only", "config.toml")} {
				main := filepath.Join(dir, "config.toml")
				if strings.HasPrefix(f, filepath.Join(dir, "main-only")) {
					main = f
				}
				lines := loadProblems(t, 10*time.Second, main)
				want := f + ": "
				if c.shown != "" {
					want += "[" + c.shown + "] "
				}
				want += "cluster name"
				if c.want == "empty cluster name" {
					want = f + ": " + c.want
				}
				if !hasLineContaining(lines, want, c.want) {
					t.Errorf("want a line with %q and %q, got:\n%s", want, c.want, strings.Join(lines, "\n"))
				}
			}
		})
	}
	// good names still load, and keep their spelling
	dir := writeTree(t, map[string]string{"config.toml": "[\"my.cluster-2_X\"]\n" + goodHostsLine + "[c1]\n" + goodHostsLine})
	cfg := mustLoad(t, filepath.Join(dir, "config.toml"), Options{})
	if got := strings.Join(cfg.Names(), ","); got != "c1,my.cluster-2_X" {
		t.Errorf("names %s", got)
	}
}

func TestFIFONotRead(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "config.toml")
	if err := mkfifo(fifo); err != nil {
		t.Skip("no named pipes:", err)
	}
	// The main file is a FIFO nobody writes to: before, Load blocked in open.
	lines := loadProblems(t, 5*time.Second, fifo)
	if !hasLine(lines, fifo+": cannot read: not a regular file (named pipe)") {
		t.Errorf("main FIFO: %q", lines)
	}

	// An include file that is a FIFO.
	dir2 := writeTree(t, map[string]string{"config.toml": "[Default]\ninclude = \"cluster.d\"\n",
		"cluster.d/a.toml": "[a]\n" + goodHostsLine})
	incFifo := filepath.Join(dir2, "cluster.d", "b.toml")
	if err := mkfifo(incFifo); err != nil {
		t.Fatal(err)
	}
	lines = loadProblems(t, 5*time.Second, filepath.Join(dir2, "config.toml"))
	if !hasLine(lines, incFifo+": cannot read: not a regular file (named pipe)") {
		t.Errorf("include FIFO: %q", lines)
	}

	// The include "directory" is a FIFO.
	dir3 := writeTree(t, map[string]string{"config.toml": "[Default]\ninclude = \"cluster.d\"\n[a]\n" + goodHostsLine})
	if err := mkfifo(filepath.Join(dir3, "cluster.d")); err != nil {
		t.Fatal(err)
	}
	lines = loadProblems(t, 5*time.Second, filepath.Join(dir3, "config.toml"))
	if !hasLineContaining(lines, filepath.Join(dir3, "config.toml")+": [Default] include: cannot read include directory: not a directory (named pipe)") {
		t.Errorf("include dir FIFO: %q", lines)
	}
}

func TestDevicesAndHugeFilesNotRead(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	dir := writeTree(t, map[string]string{"config.toml": "[Default]\ninclude = \"cluster.d\"\n",
		"cluster.d/a.toml": "[a]\n" + goodHostsLine,
		"real.toml":        "[b]\n" + goodHostsLine})
	zero := filepath.Join(dir, "cluster.d", "zero.toml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Skip("no symlinks:", err)
	}
	// Before: ReadFile on /dev/zero grows until memory runs out.
	lines := loadProblems(t, 10*time.Second, filepath.Join(dir, "config.toml"))
	if !hasLine(lines, zero+": cannot read: not a regular file (character device)") {
		t.Errorf("/dev/zero include: %q", lines)
	}
	// the main file as a link to /dev/zero
	mainZero := filepath.Join(dir, "zero-main.toml")
	os.Symlink("/dev/zero", mainZero)
	lines = loadProblems(t, 10*time.Second, mainZero)
	if !hasLine(lines, mainZero+": cannot read: not a regular file (character device)") {
		t.Errorf("/dev/zero main: %q", lines)
	}

	// a regular file over the size limit (sparse: no disk used)
	os.Remove(zero)
	big := filepath.Join(dir, "cluster.d", "big.toml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxFileSize + 1)
	f.Close()
	lines = loadProblems(t, 10*time.Second, filepath.Join(dir, "config.toml"))
	if !hasLineContaining(lines, big+": cannot read: larger than 4 MiB") {
		t.Errorf("big include: %q", lines)
	}
	if _, err := LoadBytes(filepath.Join(dir, "config.toml"), make([]byte, MaxFileSize+1), Options{}); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("LoadBytes big: %v", err)
	}
	os.Remove(big)

	// a symlink to a regular file is still read
	if err := os.Symlink(filepath.Join(dir, "real.toml"), filepath.Join(dir, "cluster.d", "link.toml")); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, filepath.Join(dir, "config.toml"), Options{})
	if got := strings.Join(cfg.Names(), ","); got != "a,b" {
		t.Errorf("names %s", got)
	}
}

// TestReadLimitHolds checks the read stops at the limit even when the file
// claims a smaller size (procfs files say 0 bytes).
func TestReadLimitHolds(t *testing.T) {
	const p = "/proc/self/maps"
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
		t.Skip("no procfs file claiming 0 bytes")
	}
	if _, err := readConfigFile(p, 16); err == nil || err.Error() != "larger than 16 bytes" {
		t.Errorf("got %v", err)
	}
	if b, err := readConfigFile(p, MaxFileSize); err != nil || len(b) == 0 {
		t.Errorf("full read: %d bytes, %v", len(b), err)
	}
}

func TestTickerRange(t *testing.T) {
	cases := []struct {
		value, problem string // problem "" = accepted
	}{
		{"1e-9", "must be between 0.05 and 3600, got 1e-09"},
		{"0.049", "must be between 0.05 and 3600, got 0.049"},
		{"0", "must be between 0.05 and 3600, got 0"},
		{"-1", "must be between 0.05 and 3600, got -1"},
		{"3600.5", "must be between 0.05 and 3600, got 3600.5"},
		{"1e300", "must be between 0.05 and 3600, got 1e+300"},
		{`"1e-9"`, "must be between 0.05 and 3600, got 1e-09"},
		{"0.05", ""},
		{"0.1", ""},
		{"0.2", ""},
		{"3600", ""},
	}
	for _, c := range cases {
		for _, table := range []string{"c", "Default"} {
			body := "[c]\n" + goodHostsLine
			if table == "c" {
				body += "monitoring-ticker = " + c.value + "\n"
			} else {
				// in [Default] and overridden by the only cluster: still checked,
				// [Default] is also read as the global settings.
				body = "[Default]\nmonitoring-ticker = " + c.value + "\n" + body + "monitoring-ticker = 1\n"
			}
			dir := writeTree(t, map[string]string{"config.toml": body})
			path := filepath.Join(dir, "config.toml")
			cfg, err := Load(path, Options{})
			if c.problem == "" {
				if err != nil {
					t.Errorf("%s in [%s]: %v", c.value, table, err)
				}
				continue
			}
			want := path + ": [" + table + "] monitoring-ticker: " + c.problem
			if lines := problemLines(t, cfg, err); !hasLine(lines, want) {
				t.Errorf("want %q, got %q", want, lines)
			}
		}
	}
	// and on the command line
	dir := writeTree(t, map[string]string{"config.toml": "[c]\n" + goodHostsLine})
	_, err := Load(filepath.Join(dir, "config.toml"), Options{Overrides: map[string]string{"monitoring-ticker": "1e-9"}})
	if err == nil || err.Error() != "command line: monitoring-ticker: must be between 0.05 and 3600, got 1e-09" {
		t.Errorf("override: %v", err)
	}
}

// TestEveryNumberBounded loads, for every int and float key, its bounds
// (accepted) and a value just outside each (refused, naming file, table, key
// and range).
func TestEveryNumberBounded(t *testing.T) {
	n := 0
	for _, k := range Keys() {
		if !k.Ranged() {
			continue
		}
		n++
		if k.Min > k.Max || k.Range() == "" {
			t.Errorf("%s: range %q", k.Name, k.Range())
		}
		if strings.HasSuffix(k.Name, "-port") && (k.Max != 65535 || (k.Min != 0 && k.Min != 1)) {
			t.Errorf("%s: a port with range %s", k.Name, k.Range())
		}
		if k.Kind == KindInt && k.Max > math.MaxInt32 {
			t.Errorf("%s: max above what a TOML integer may hold here", k.Name)
		}
		below, above := k.Min-1, k.Max+1
		if k.Kind == KindFloat {
			below, above = k.Min-k.Min/2-0.01, k.Max*1.5+1
		}
		for _, v := range []struct {
			val float64
			ok  bool
		}{{k.Min, true}, {k.Max, true}, {below, false}, {above, false}} {
			text := formatValue(v.val)
			if k.Kind == KindInt {
				text = formatValue(int(v.val))
			}
			path := "/etc/rm/" + k.Name + ".toml"
			cfg, err := LoadBytes(path, []byte("[c]\n"+goodHostsLine+k.Name+" = "+text+"\n"), Options{})
			if v.ok {
				if err != nil {
					t.Errorf("%s = %s refused: %v", k.Name, text, err)
				}
				continue
			}
			want := path + ": [c] " + k.Name + ": must be between " + k.bound(k.Min) + " and " + k.bound(k.Max) + ", got "
			if lines := problemLines(t, cfg, err); !hasLineContaining(lines, want) {
				t.Errorf("%s = %s: want %q, got %q", k.Name, text, want, lines)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d numeric keys", n)
	}
	if k, _ := Lookup("log-level"); k.Max != MaxLogLevel || k.Min != 0 {
		t.Errorf("log-level range %s, MaxLogLevel %d", k.Range(), MaxLogLevel)
	}
	if k, _ := Lookup("monitoring-ticker"); k.Min != 0.05 || k.Max != 3600 {
		t.Errorf("monitoring-ticker range %s", k.Range())
	}
}

func TestDefaultsInRange(t *testing.T) {
	d := Defaults()
	for _, k := range Keys() {
		v := fieldOf(&d, k).Interface()
		if msgs := checkValue(k, v); len(msgs) > 0 {
			t.Errorf("default of %s: %v", k.Name, msgs)
		}
	}
}

// TestSetChecked: settings changed at run time (the API's switches and
// set-prefered go through Settings.Set) obey the same rules as the files.
func TestSetChecked(t *testing.T) {
	s := baseSettings()
	for _, c := range []struct{ key, text, want string }{
		{"monitoring-ticker", "1e-9", "monitoring-ticker: must be between 0.05 and 3600, got 1e-09"},
		{"api-port", "70000", "api-port: must be between 0 and 65535, got 70000"},
		{"failcount", "-1", "failover-falsepositive-ping-counter: must be between 0 and 10000, got -1"},
		{"failover-mode", "auto", `failover-mode: must be manual or automatic, got "auto"`},
		{"scheduler-db-servers-logs-cron", "every day", "scheduler-db-servers-logs-cron: not a cron schedule"},
		{"db-servers-credential", "S3cretNoColon", "db-servers-credential: want user:password"},
		{"failover-limit", "x", "failover-limit: want an integer"},
	} {
		before := s
		err := s.Set(c.key, c.text)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Set(%s, %s) = %v, want %q", c.key, c.text, err, c.want)
		}
		if s != before {
			t.Errorf("Set(%s, %s) changed the settings despite the error", c.key, c.text)
		}
		if err != nil && strings.Contains(err.Error(), "S3cret") {
			t.Errorf("secret in %v", err)
		}
	}
	if err := s.Set("monitoring-ticker", "0.5"); err != nil || s.MonitoringTicker != 0.5 {
		t.Errorf("0.5: %v", err)
	}
	if err := s.Set("interactive", "false"); err != nil || s.FailoverMode != "automatic" {
		t.Errorf("interactive: %v %q", err, s.FailoverMode)
	}
}

func TestProblemNamesShownSafely(t *testing.T) {
	p := Problem{File: "f.toml", Section: "a\nfake.toml: [x] line", Key: "k\x00", Message: "m"}
	if got := p.Error(); got != `f.toml: ["a\nfake.toml: [x] line"] "k\x00": m` {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("é", 100)
	got := Problem{File: "f", Section: long, Message: "m"}.Error()
	if len(got) > 400 || !strings.HasSuffix(got, `"...] m`) {
		t.Errorf("long name: %q", got)
	}
	if got := (Problem{File: "f", Section: "café-1", Key: "k", Message: "m"}).Error(); got != "f: [café-1] k: m" {
		t.Errorf("printable: %q", got)
	}
}

func TestEtcdKeysChecked(t *testing.T) {
	for _, c := range []struct {
		set  map[string]string
		want string // "" = valid
	}{
		{map[string]string{"etcd-endpoints": "http://127.0.0.1:2379,https://[::1]:2379"}, ""},
		{map[string]string{"etcd-endpoints": "127.0.0.1:2379"}, "not an etcd client URL"},
		{map[string]string{"etcd-endpoints": "http://127.0.0.1"}, "not an etcd client URL"},
		{map[string]string{"etcd-prefix": "rmp"}, "must start with /"},
		{map[string]string{"etcd-endpoints": "http://a:1", "etcd-tls-client-cert": "/c.pem"}, "go together"},
		{map[string]string{"etcd-username": "u"}, "which etcd?"},
		{map[string]string{"etcd-lease-ttl": "1"}, "between 2 and 300"},
	} {
		s := Defaults()
		s.DBServersHosts = "db1:3306"
		for k, v := range c.set {
			if err := s.Set(k, v); err != nil {
				if c.want == "" || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%v: set: %v", c.set, err)
				}
				goto next
			}
		}
		{
			ps := Validate(&s)
			got := ""
			for _, p := range ps {
				got += p.Key + ": " + p.Message + "; "
			}
			if (c.want == "") != (got == "") || (c.want != "" && !strings.Contains(got, c.want)) {
				t.Errorf("%v: problems %q, want %q", c.set, got, c.want)
			}
		}
	next:
	}
}
