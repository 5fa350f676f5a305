package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as the main file: Load must never panic, and
// must return either a Config or Problems, never both nor neither.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"testdata/slapos/config.toml", "testdata/typo/config.toml",
		"testdata/slapos/cluster.d/config-cluster1.toml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[Default]\ninclude = \"cluster.d\"\n"))
	f.Add([]byte("[saved-]\nhosts = 1\n[a]\ninteractive = \"true\"\n"))
	f.Add([]byte("x = [1, {a = 2}]\n[b.c]\nd = 1979-05-27\n"))
	f.Add([]byte("[c]\nmonitoring-ticker = nan\nfailover-limit = 1e300\ndb-servers-hosts = \"[\"\n"))
	// issue 11: names climbing out of the data directory, a spinning ticker,
	// hostile include directories (see bad.d below), numbers out of range
	f.Add([]byte("[\"../../evilcluster\"]\ndb-servers-hosts = \"db1\"\n"))
	f.Add([]byte("[\"saved-../x\"]\n[\"a\\u0000b\"]\n['a\\b']\n[\".hidden\"]\n[\"\"]\n[\"a..b\"]\n"))
	f.Add([]byte("[\"" + strings.Repeat("x", 300) + "\"]\ndb-servers-hosts = \"db1\"\n"))
	f.Add([]byte("[c]\ndb-servers-hosts = \"db1\"\nmonitoring-ticker = 1e-9\n"))
	f.Add([]byte("[Default]\nmonitoring-ticker = 1e-9\napi-port = 70000\n[c]\ndb-servers-hosts = \"db1\"\nmonitoring-ticker = 1\nproxysql-writer-hostgroup = 99999999999\nlog-level = 7.0\n"))
	f.Add([]byte("[Default]\ninclude = \"bad.d\"\n[c]\ndb-servers-hosts = \"db1\"\n"))
	f.Add([]byte("[Default]\ninclude = \"fifo.d\"\n"))
	dir := f.TempDir()
	// a real include dir next to the fuzzed file, so include paths get exercised
	os.MkdirAll(filepath.Join(dir, "cluster.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "cluster.d", "c.toml"), []byte("[inc]\ndb-servers-hosts = \"db1\"\n"), 0o644)
	// and a hostile one: a FIFO, a link to /dev/zero, an over-long file; and a
	// FIFO as the include directory itself
	os.MkdirAll(filepath.Join(dir, "bad.d"), 0o755)
	mkfifo(filepath.Join(dir, "bad.d", "fifo.toml"))
	os.Symlink("/dev/zero", filepath.Join(dir, "bad.d", "zero.toml"))
	if big, err := os.Create(filepath.Join(dir, "bad.d", "big.toml")); err == nil {
		big.Truncate(MaxFileSize + 1)
		big.Close()
	}
	mkfifo(filepath.Join(dir, "fifo.d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadBytes(filepath.Join(dir, "config.toml"), data, Options{Overrides: map[string]string{"failover-limit": "3"}})
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v err %v", cfg != nil, err)
		}
		if err != nil {
			if _, ok := err.(Problems); !ok {
				t.Fatalf("error type %T", err)
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty problem list")
			}
			return
		}
		for _, c := range cfg.Clusters {
			_ = c.Settings.String()
		}
	})
}
