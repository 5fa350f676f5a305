package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Settings changed through the API are saved as replication-manager saved them, when the
// cluster's monitoring-save-config is on: a table [saved-<cluster>] in
// <working dir>/<cluster>/<cluster>.toml (the working dir is monitoring-datadir, or
// <monitoring-basedir>/data). Load reads that file back, below the static tables: a key
// written in the configuration files keeps their value (replication-manager's rule), a key
// only changed through the API keeps its saved value across restarts and reloads.

// SavedPath returns the file holding a cluster's saved settings.
func SavedPath(s *Settings, cluster string) string {
	return filepath.Join(s.MonitoringDatadir, cluster, cluster+".toml")
}

// SaveSetting records key = text for cluster in its saved settings file, keeping the other
// keys saved there. The file is replaced atomically, mode 0600 (a saved credential is a
// secret). The error names the file, never the value.
func SaveSetting(s *Settings, cluster, key, text string) error {
	canon, ok := Canonical(key)
	if !ok {
		if up, ok := acceptedKey(key); ok {
			canon = up.Name
		} else {
			return fmt.Errorf("unknown key%s", suggest(key))
		}
	}
	path := SavedPath(s, cluster)
	table := "saved-" + cluster
	values := map[string]any{}
	if b, err := readConfigFile(path, MaxFileSize); err == nil {
		var doc map[string]any
		if err := toml.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: not TOML, not overwritten: %v", path, strings.TrimPrefix(err.Error(), "toml: "))
		}
		if t, ok := doc[table].(map[string]any); ok {
			values = t
		}
	} else if _, statErr := os.Stat(path); !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("%s: %s", path, unwrapPathError(err))
	}
	if k, ok := Lookup(canon); ok {
		v, err := parseText(k, text)
		if err != nil {
			return fmt.Errorf("%s: %w", canon, err)
		}
		values[canon] = v
	} else {
		values[canon] = text
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Settings changed through the API (monitoring-save-config); the configuration files win.\n[%s]\n", tomlKey(table))
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var val string
		switch x := values[n].(type) {
		case string:
			val = tomlString(x)
		case bool, int, int64, float64:
			val = formatValue(x)
		default:
			continue
		}
		fmt.Fprintf(&b, "%s = %s\n", tomlKey(n), val)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%s: %s", filepath.Dir(path), unwrapPathError(err))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".saved-*")
	if err != nil {
		return fmt.Errorf("%s: %s", path, unwrapPathError(err))
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%s: %s", path, unwrapPathError(err))
	}
	return nil
}

// savedSections reads the saved settings of the clusters of a first assembly whose
// monitoring-save-config is on and that have no [saved-<cluster>] table in the
// configuration files. Only the file's [saved-<cluster>] table is taken.
func savedSections(cfg *Config, secs []*section) ([]string, []*section, []Problem) {
	already := map[string]bool{}
	for _, s := range secs {
		already[strings.ToLower(s.name)] = true
	}
	var files []string
	var out []*section
	var problems []Problem
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		table := "saved-" + c.Name
		if !c.Settings.MonitoringSaveConfig || already[strings.ToLower(table)] {
			continue
		}
		path := SavedPath(&c.Settings, c.Name)
		b, err := readConfigFile(path, MaxFileSize)
		if err != nil {
			if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
				continue
			}
			problems = append(problems, Problem{File: path, Message: "cannot read saved settings: " + err.Error()})
			continue
		}
		files = append(files, path)
		ss, ps, _ := parseDocument(path, b)
		problems = append(problems, ps...)
		for _, s := range ss {
			if !strings.EqualFold(s.name, table) {
				problems = append(problems, Problem{File: path, Section: s.name,
					Message: fmt.Sprintf("unexpected table in saved settings; only [%s] is read", table)})
				continue
			}
			out = append(out, s)
		}
	}
	return files, out, problems
}
