package config

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// String returns every key as TOML lines "key = value", sorted, secrets masked.
func (s Settings) String() string {
	var b strings.Builder
	s.write(&b, false)
	return b.String()
}

// Format makes every fmt verb (%v, %+v, %s, %#v, ...) print the masked form.
func (s Settings) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// GoString keeps %#v masked.
func (s Settings) GoString() string { return s.String() }

// MarshalJSON encodes the settings as an object keyed by key name, secrets masked.
func (s Settings) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(registry))
	for _, k := range registry {
		v := fieldOf(&s, k).Interface()
		if k.Secret {
			v = Mask(k.Name, v.(string))
		}
		m[k.Name] = v
	}
	return json.Marshal(m)
}

// Changed returns the keys whose value differs from the built-in default, sorted.
func (s *Settings) Changed() []string {
	d := Defaults()
	var out []string
	for _, k := range registry {
		if fieldOf(s, k).Interface() != fieldOf(&d, k).Interface() {
			out = append(out, k.Name)
		}
	}
	return out
}

func (s *Settings) write(w io.Writer, onlyChanged bool) {
	d := Defaults()
	for _, k := range registry {
		v := fieldOf(s, k).Interface()
		if onlyChanged && v == fieldOf(&d, k).Interface() {
			continue
		}
		fmt.Fprintf(w, "%s = %s\n", k.Name, tomlValue(k, v))
	}
}

// WriteTOML writes the settings as a TOML table named section (no header when
// section is empty), keys sorted, secrets masked; onlyChanged skips defaults.
func (s *Settings) WriteTOML(w io.Writer, section string, onlyChanged bool) {
	if section != "" {
		fmt.Fprintf(w, "[%s]\n", tomlKey(section))
	}
	s.write(w, onlyChanged)
}

// WriteTOML writes every cluster's effective settings, one table per cluster, then the
// replication-manager keys it sets that are accepted without effect (values as set, secrets
// masked) and a comment naming every key it sets that has no effect yet, with where.
func (c *Config) WriteTOML(w io.Writer, onlyChanged bool) {
	for i := range c.Clusters {
		if i > 0 {
			fmt.Fprintln(w)
		}
		cl := &c.Clusters[i]
		cl.Settings.WriteTOML(w, cl.Name, onlyChanged)
		names := make([]string, 0, len(cl.Accepted))
		for k := range cl.Accepted {
			names = append(names, k)
		}
		sortStrings(names)
		if len(names) > 0 {
			fmt.Fprintln(w, "# replication-manager keys accepted, no effect yet:")
			for _, k := range names {
				fmt.Fprintf(w, "%s = %s\n", k, describeAccepted(k, cl.Accepted[k].Value))
			}
		}
		if ne := cl.NoEffect(); len(ne) > 0 {
			parts := make([]string, len(ne))
			for j, s := range ne {
				parts[j] = s.Key + " (" + s.where() + ")"
			}
			fmt.Fprintf(w, "# accepted, no effect yet: %s\n", strings.Join(parts, ", "))
		}
	}
}

// where renders the origin of a setting: "file [section]", "environment", "command line".
func (s NoEffectSetting) where() string {
	if s.Section == "" {
		return s.File
	}
	return s.File + " [" + s.Section + "]"
}

func tomlValue(k Key, v any) string {
	if k.Kind == KindString {
		return tomlString(Mask(k.Name, v.(string)))
	}
	return formatValue(v)
}

// tomlKey quotes a table name unless it is a bare key.
func tomlKey(s string) string {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return tomlString(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u` + strings.ToUpper(fmt.Sprintf("%04x", r)))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
