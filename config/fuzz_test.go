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
	dir := f.TempDir()
	// a real include dir next to the fuzzed file, so include paths get exercised
	os.MkdirAll(filepath.Join(dir, "cluster.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "cluster.d", "c.toml"), []byte("[inc]\ndb-servers-hosts = \"db1\"\n"), 0o644)
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
