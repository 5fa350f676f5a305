package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/pelletier/go-toml/v2"
)

// DefaultSearchPaths are the directories searched for config.toml when no
// --config is given, in order (as replication-manager does).
var DefaultSearchPaths = []string{"/etc/replication-manager", "."}

// DefaultFileName is the configuration file searched in DefaultSearchPaths.
const DefaultFileName = "config.toml"

// DefaultClusterName names the single cluster built from [Default] when the
// files define no cluster table.
const DefaultClusterName = "Default"

// Options tune Load.
type Options struct {
	// Overrides are command-line values (key or alias -> text), applied last to
	// [Default] and to every cluster. See Overrides(fs) to collect them from flags.
	Overrides map[string]string
	// Clusters restricts the loaded clusters to these names (case-insensitive).
	// A name matching no cluster is a problem.
	Clusters []string
	// Env is the environment ("NAME=value" entries, as os.Environ gives them): a variable
	// DEFAULT_<KEY> (key upper case, '-' as '_') sets that key at the [Default] level, as
	// replication-manager's viper environment binding did (env.go). nil reads none.
	Env []string
}

// Config is the loaded, validated configuration.
type Config struct {
	Files    []string  // files read: the main file, then included files in order
	Default  Settings  // built-in defaults < [saved-default] < [Default] < overrides
	Clusters []Cluster // sorted by name (case-insensitive)
}

// Cluster is the effective configuration of one cluster.
type Cluster struct {
	Name     string // as written in its table, "saved-" prefix stripped
	File     string // file of the cluster's table ("" for the implicit Default cluster without [Default])
	Section  string // the cluster's table as written (e.g. "cluster1"; "saved-cluster1" when only saved)
	Settings Settings
	// Accepted holds the replication-manager keys set for this cluster that are not keys of
	// Settings: accepted, no effect yet (catalogue.go). Keyed by canonical name.
	Accepted map[string]AcceptedValue
	origins  map[string]origin
}

type origin struct {
	file, section, key string // key as written (may be an alias)
}

// Cluster returns the cluster named name (case-insensitive).
func (c *Config) Cluster(name string) (*Cluster, bool) {
	for i := range c.Clusters {
		if strings.EqualFold(c.Clusters[i].Name, name) {
			return &c.Clusters[i], true
		}
	}
	return nil, false
}

// Names returns the cluster names in order.
func (c *Config) Names() []string {
	out := make([]string, len(c.Clusters))
	for i, cl := range c.Clusters {
		out[i] = cl.Name
	}
	return out
}

// Origin tells where the effective value of key came from: file and table
// (file is CommandLine for an override). ok is false for a built-in default.
func (c *Cluster) Origin(key string) (file, section string, ok bool) {
	k, found := Canonical(key)
	if !found {
		return "", "", false
	}
	o, ok := c.origins[k]
	return o.file, o.section, ok
}

// FindConfig returns the first existing DefaultFileName in DefaultSearchPaths.
func FindConfig() (string, error) {
	for _, d := range DefaultSearchPaths {
		p := filepath.Join(d, DefaultFileName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s found in %s", DefaultFileName, strings.Join(DefaultSearchPaths, " or "))
}

// Load reads the main file at path and the files of its include directory,
// merges them with the overrides and validates every selected cluster. On any
// problem it returns a nil Config and a Problems error listing all of them.
//
// Precedence, lowest first: built-in defaults < [saved-default] < [Default] <
// DEFAULT_<KEY> environment variables < [saved-<cluster>] < [<cluster>] < command-line
// overrides.
func Load(path string, opts Options) (*Config, error) {
	data, err := readConfigFile(path, MaxFileSize)
	if err != nil {
		return nil, Problems{{File: path, Message: "cannot read: " + err.Error()}}
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes is Load with the main file's content given; path names it in
// problems and anchors a relative include directory. data larger than
// MaxFileSize is refused.
func LoadBytes(path string, data []byte, opts Options) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, Problems{{File: path, Message: fmt.Sprintf("cannot read: larger than %s (%d bytes)", sizeText(MaxFileSize), len(data))}}
	}
	var problems []Problem
	total := int64(len(data))
	secs, ps, readable := parseDocument(path, data)
	problems = append(problems, ps...)
	broken := !readable // syntax error: nothing to merge or validate
	files := []string{path}

	// include: only from [Default] of the main file.
	for _, s := range secs {
		if e, ok := s.values["include"]; ok {
			if !strings.EqualFold(s.name, "default") {
				problems = append(problems, Problem{File: s.file, Section: s.name, Key: e.key,
					Message: "include is only read from [Default] of the main file"})
				continue
			}
			dir := e.value.(string)
			if strings.TrimSpace(dir) == "" {
				continue
			}
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(path), dir)
			}
			inc, err := includeFiles(dir)
			if err != nil {
				problems = append(problems, Problem{File: s.file, Section: s.name, Key: e.key,
					Message: "cannot read include directory: " + err.Error()})
				continue
			}
			for _, f := range inc {
				files = append(files, f)
				b, err := readConfigFile(f, MaxFileSize)
				if err != nil {
					problems = append(problems, Problem{File: f, Message: "cannot read: " + err.Error()})
					broken = true // its clusters are missing: do not validate the rest
					continue
				}
				if total += int64(len(b)); total > MaxTotalSize {
					problems = append(problems, Problem{File: f, Message: fmt.Sprintf(
						"cannot read: the configuration files exceed %s together", sizeText(MaxTotalSize))})
					broken = true
					break
				}
				isecs, ps, readable := parseDocument(f, b)
				problems = append(problems, ps...)
				broken = broken || !readable
				for _, is := range isecs {
					if e, ok := is.values["include"]; ok {
						problems = append(problems, Problem{File: is.file, Section: is.name, Key: e.key,
							Message: "include is only read from [Default] of the main file"})
						delete(is.values, "include")
					}
				}
				secs = append(secs, isecs...)
			}
		}
	}
	if broken {
		// Validating what could be read would report missing values that are
		// probably in the unreadable file: report the syntax errors only.
		return nil, dedupe(problems)
	}
	cfg, ps := assemble(files, secs, opts)
	problems = append(problems, ps...)
	if len(problems) > 0 {
		return nil, dedupe(problems)
	}
	// Settings saved through the API (monitoring-save-config): read once the working
	// directory of each cluster is known, then everything is merged again.
	if sf, ss, ps := savedSections(cfg, secs); len(sf) > 0 || len(ps) > 0 {
		if len(ps) > 0 {
			return nil, dedupe(ps)
		}
		files = append(files, sf...)
		if cfg, ps = assemble(files, append(secs, ss...), opts); len(ps) > 0 {
			return nil, dedupe(ps)
		}
	}
	if ps := decryptSecrets(cfg, ReadKeyFile); len(ps) > 0 {
		return nil, dedupe(ps)
	}
	return cfg, nil
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// includeFiles lists the *.toml files of dir, sorted by name (directories
// named *.toml are skipped; any other non-regular entry is refused when read).
// dir must be a directory: it is checked before it is opened, so a FIFO in its
// place cannot block; at most MaxIncludeFiles files are accepted.
func includeFiles(dir string) ([]string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, errors.New(unwrapPathError(err) + ": " + dir)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("not a directory (%s): %s", fileType(st.Mode()), dir)
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errors.New(unwrapPathError(err) + ": " + dir)
	}
	defer d.Close()
	var out []string
	for {
		ents, err := d.ReadDir(1024)
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(strings.ToLower(e.Name()), ".toml") {
				continue
			}
			if len(out) == MaxIncludeFiles {
				return nil, fmt.Errorf("more than %d *.toml files: %s", MaxIncludeFiles, dir)
			}
			out = append(out, filepath.Join(dir, e.Name()))
		}
		if err == io.EOF || (err == nil && len(ents) == 0) {
			break
		}
		if err != nil {
			return nil, errors.New(unwrapPathError(err) + ": " + dir)
		}
	}
	sort.Strings(out)
	return out, nil
}

// section is one top-level table of a file, with its keys resolved and typed.
type section struct {
	file     string
	name     string           // as written
	values   map[string]entry // canonical key -> value
	accepted map[string]entry // upstream keys accepted without effect -> value as text
}

type entry struct {
	key   string // as written
	value any    // typed: string, bool, int or float64
}

// parseDocument decodes one TOML file into its tables; readable is false when
// the file is not valid TOML. Pure: no I/O.
func parseDocument(file string, data []byte) (secs []*section, problems []Problem, readable bool) {
	defer func() {
		// go-toml is fuzzed upstream, but a configuration checker must never crash.
		if r := recover(); r != nil {
			secs, readable = nil, false
			problems = []Problem{{File: file, Message: fmt.Sprintf("cannot parse: %v", r)}}
		}
	}()
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, []Problem{{File: file, Message: fmt.Sprintf("line %d, column %d: TOML syntax error: %s",
				row, col, strings.TrimPrefix(de.Error(), "toml: "))}}, false
		}
		return nil, []Problem{{File: file, Message: "TOML error: " + strings.TrimPrefix(err.Error(), "toml: ")}}, false
	}
	for _, name := range sortedKeys(doc) {
		tbl, ok := doc[name].(map[string]any)
		if !ok {
			problems = append(problems, Problem{File: file, Key: name,
				Message: "key outside any table; put it under [Default] or a cluster table"})
			continue
		}
		s := &section{file: file, name: name, values: map[string]entry{}, accepted: map[string]entry{}}
		for _, k := range sortedKeys(tbl) {
			v := tbl[k]
			if _, sub := v.(map[string]any); sub {
				problems = append(problems, Problem{File: file, Section: name, Key: k,
					Message: "unexpected sub-table; settings are plain key = value lines"})
				continue
			}
			canon, known := Canonical(k)
			if !known {
				if up, ok := acceptedKey(k); ok {
					if prev, dup := s.accepted[up.Name]; dup {
						problems = append(problems, Problem{File: file, Section: name, Key: k,
							Message: fmt.Sprintf("set twice in this table (also as %q)", prev.key)})
						continue
					}
					text, err := acceptedText(up, v)
					if err != nil {
						problems = append(problems, Problem{File: file, Section: name, Key: k, Message: err.Error()})
						continue
					}
					s.accepted[up.Name] = entry{key: k, value: text}
					continue
				}
				problems = append(problems, Problem{File: file, Section: name, Key: k, Message: "unknown key" + suggest(k)})
				continue
			}
			if prev, dup := s.values[canon]; dup {
				problems = append(problems, Problem{File: file, Section: name, Key: k,
					Message: fmt.Sprintf("set twice in this table (also as %q, both mean %q)", prev.key, canon)})
				continue
			}
			key, _ := Lookup(canon)
			if strings.EqualFold(k, "interactive") {
				v = interactiveToMode(v)
			}
			tv, err := convert(key, v)
			if err != nil {
				problems = append(problems, Problem{File: file, Section: name, Key: k, Message: err.Error()})
				continue
			}
			// Checked here, not only by Validate of each cluster, so that a value of
			// [Default] every cluster overrides (read as a global: api-port,
			// log-level...) is checked too.
			if msgs := checkValue(key, tv); len(msgs) > 0 {
				for _, m := range msgs {
					problems = append(problems, Problem{File: file, Section: name, Key: k, Message: m})
				}
				continue
			}
			s.values[canon] = entry{key: k, value: tv}
		}
		secs = append(secs, s)
	}
	return secs, problems, true
}

// interactiveToMode maps the old boolean `interactive` onto failover-mode.
func interactiveToMode(v any) any {
	b, ok := v.(bool)
	if s, isStr := v.(string); isStr {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			b, ok = true, true
		case "false":
			b, ok = false, true
		}
	}
	if !ok {
		return v
	}
	if b {
		return "manual"
	}
	return "automatic"
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type clusterSecs struct {
	name        string
	saved, main *section
}

// assemble merges parsed tables into clusters, applies overrides and validates.
// Pure: no I/O.
func assemble(files []string, secs []*section, opts Options) (*Config, []Problem) {
	var problems []Problem
	byLower := map[string]*section{}
	var def, savedDef *section
	clusters := map[string]*clusterSecs{}
	for _, s := range secs {
		low := strings.ToLower(s.name)
		if prev, dup := byLower[low]; dup {
			where := "in " + prev.file
			if prev.file == s.file {
				where = "in the same file"
			}
			problems = append(problems, Problem{File: s.file, Section: s.name,
				Message: fmt.Sprintf("table defined twice: also [%s] %s", prev.name, where)})
			continue
		}
		byLower[low] = s
		switch {
		case low == "default":
			def = s
		case low == "saved-default":
			savedDef = s
		default:
			base, saved := s.name, false
			if strings.HasPrefix(low, "saved-") {
				base, saved = s.name[len("saved-"):], true
			}
			if err := ValidateClusterName(base); err != nil {
				// The name becomes a directory, a file name and a URL segment:
				// "../../x" would write outside monitoring-datadir.
				problems = append(problems, Problem{File: s.file, Section: s.name, Message: err.Error()})
				continue
			}
			lb := strings.ToLower(base)
			c := clusters[lb]
			if c == nil {
				c = &clusterSecs{name: base}
				clusters[lb] = c
			}
			if saved {
				c.saved = s
			} else {
				c.main = s
				c.name = base // the static table's spelling wins
			}
		}
	}

	// overrides
	over := &section{file: CommandLine, values: map[string]entry{}, accepted: map[string]entry{}}
	for _, k := range sortedStrings(opts.Overrides) {
		canon, ok := Canonical(k)
		if !ok {
			if up, ok := acceptedKey(k); ok {
				text, err := acceptedText(up, opts.Overrides[k])
				if err != nil {
					problems = append(problems, Problem{File: CommandLine, Key: k, Message: err.Error()})
					continue
				}
				over.accepted[up.Name] = entry{key: k, value: text}
				continue
			}
			problems = append(problems, Problem{File: CommandLine, Key: k, Message: "unknown key" + suggest(k)})
			continue
		}
		key, _ := Lookup(canon)
		v, err := parseText(key, opts.Overrides[k])
		if err != nil {
			problems = append(problems, Problem{File: CommandLine, Key: k, Message: err.Error()})
			continue
		}
		if msgs := checkValue(key, v); len(msgs) > 0 {
			for _, m := range msgs {
				problems = append(problems, Problem{File: CommandLine, Key: k, Message: m})
			}
			continue
		}
		over.values[canon] = entry{key: k, value: v}
	}

	env, ps := envSection(opts.Env)
	problems = append(problems, ps...)

	cfg := &Config{Files: files}
	cfg.Default = Defaults()
	for _, s := range []*section{savedDef, def, env, over} {
		apply(&cfg.Default, s, nil, nil)
	}
	derive(&cfg.Default, nil)

	var list []*clusterSecs
	for _, c := range clusters {
		list = append(list, c)
	}
	if len(list) == 0 {
		list = append(list, &clusterSecs{name: DefaultClusterName})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := strings.ToLower(list[i].name), strings.ToLower(list[j].name)
		if a != b {
			return a < b
		}
		return list[i].name < list[j].name
	})

	if sel := cleanNames(opts.Clusters); len(sel) > 0 {
		var kept []*clusterSecs
		for _, want := range sel {
			found := false
			for _, c := range list {
				if strings.EqualFold(c.name, want) {
					found = true
				}
			}
			if !found {
				names := make([]string, len(list))
				for i, c := range list {
					names[i] = c.name
				}
				problems = append(problems, Problem{File: CommandLine, Key: "cluster",
					Message: fmt.Sprintf("unknown cluster %q; the configuration defines: %s", want, strings.Join(names, ", "))})
			}
		}
		for _, c := range list {
			for _, want := range sel {
				if strings.EqualFold(c.name, want) {
					kept = append(kept, c)
					break
				}
			}
		}
		list = kept
	}

	for _, c := range list {
		cl := Cluster{Name: c.name, Settings: Defaults(), Accepted: map[string]AcceptedValue{}, origins: map[string]origin{}}
		switch {
		case c.main != nil:
			cl.File, cl.Section = c.main.file, c.main.name
		case c.saved != nil:
			cl.File, cl.Section = c.saved.file, c.saved.name
		case def != nil: // implicit Default cluster
			cl.File, cl.Section = def.file, def.name
		default:
			cl.File = files[0]
		}
		for _, s := range []*section{savedDef, def, env, c.saved, c.main, over} {
			apply(&cl.Settings, s, cl.origins, cl.Accepted)
		}
		derive(&cl.Settings, cl.origins)
		for _, p := range Validate(&cl.Settings) {
			if o, ok := cl.origins[p.Key]; ok {
				p.File, p.Section, p.Key = o.file, o.section, o.key
			} else {
				p.File, p.Section = cl.File, cl.Section
			}
			if p.File == CommandLine {
				p.Section = ""
			}
			problems = append(problems, p)
		}
		cfg.Clusters = append(cfg.Clusters, cl)
	}
	return cfg, problems
}

func apply(s *Settings, sec *section, origins map[string]origin, accepted map[string]AcceptedValue) {
	if sec == nil {
		return
	}
	for canon, e := range sec.values {
		k, _ := Lookup(canon)
		setValue(s, k, e.value)
		if origins != nil {
			origins[canon] = origin{file: sec.file, section: sec.name, key: e.key}
		}
	}
	if accepted != nil {
		for name, e := range sec.accepted {
			accepted[name] = AcceptedValue{Value: e.value.(string), File: sec.file, Section: sec.name}
		}
	}
}

func sortStrings(s []string) { sort.Strings(s) }

func sortedStrings(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// cleanNames splits comma-separated entries and drops empty ones.
func cleanNames(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
