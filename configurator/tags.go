package configurator

import (
	"fmt"
	"sort"
	"strings"
)

// Family groups tags as replication-manager's module does (<family>.<category>.<tag>).
type Family string

const (
	FamilyReplication Family = "replication"
	FamilyEngine      Family = "engine"
	FamilyNetwork     Family = "network"
	FamilyLog         Family = "log"
	FamilyDisk        Family = "disk"
	FamilySecurity    Family = "security"
	FamilyOptimizer   Family = "optimizer"
	FamilyCharset     Family = "charset"
	FamilyMemory      Family = "memory"
	FamilySystem      Family = "system"
)

// Tag is one entry of the catalogue.
type Tag struct {
	Name   string
	Family Family
	// Fragment is the file name under etc/mysql/replication-manager.d/ and of the conf.d
	// symlink that activates it; empty for tags that change no file of their own (system
	// tags, sizing tags, tags kept for compatibility).
	Fragment string
	// Body is the fragment's content after the header line: a text/template over Vars.
	Body string
	// Plugin is the shared library (without .so) the fragment loads, when it loads one.
	Plugin string
	// Effect is one line for the documentation.
	Effect string
	// Aliases are other accepted spellings (the original's typos).
	Aliases []string
	// Unsupported, when set, says why the tag is refused (known, but not generated).
	Unsupported string
}

// defaultFragment is a fragment written and activated whatever the tags.
type defaultFragment struct {
	Fragment string
	Body     string
	Effect   string
}

// exclusive lists groups of tags that set the same variables to different values: at
// most one tag of a group may be active.
var exclusive = [][]string{
	{"row", "statement", "mixed"},
	{"optimistic", "serialize", "minimal", "aggressive"},
	{"readcommitted", "readdirty", "readsnapshot", "readserialized"},
	{"bm4ci", "bm4cs", "utf8ci", "utf8cs"},
	{"bind", "nobind"},
	{"sqlmodeunstrict", "sqlmodeoracle"},
	{"nestedjoin", "hashjoin"},
	{"docker", "pkg", "deb", "rpm"},
}

var byName = func() map[string]*Tag {
	m := make(map[string]*Tag)
	for i := range catalogue {
		t := &catalogue[i]
		for _, n := range append([]string{t.Name}, t.Aliases...) {
			if _, dup := m[n]; dup {
				panic("configurator: duplicate tag " + n)
			}
			m[n] = t
		}
	}
	return m
}()

// Catalogue returns a copy of every known tag, in catalogue order (by family).
func Catalogue() []Tag { return append([]Tag(nil), catalogue...) }

// Lookup returns the tag named name (or one of its aliases).
func Lookup(name string) (Tag, bool) {
	t, ok := byName[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Tag{}, false
	}
	return *t, true
}

// TagSet is a validated set of tags, by canonical name.
type TagSet map[string]bool

// Has reports whether tag name is active.
func (s TagSet) Has(name string) bool { return s[name] }

// Names returns the active tags sorted.
func (s TagSet) Names() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseTags validates a tag list (prov-db-tags entries). Empty entries are ignored (the
// original enabled every tag on an empty entry); aliases map to their canonical name;
// an unknown or unsupported tag, or two tags of an exclusive group, is an error naming them.
func ParseTags(list []string) (TagSet, error) {
	set := TagSet{}
	for _, raw := range list {
		for _, n := range strings.Split(raw, ",") {
			n = strings.ToLower(strings.TrimSpace(n))
			if n == "" {
				continue
			}
			t, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("prov-db-tags: unknown tag %q", n)
			}
			if t.Unsupported != "" {
				return nil, fmt.Errorf("prov-db-tags: tag %q is not supported: %s", n, t.Unsupported)
			}
			set[t.Name] = true
		}
	}
	for _, g := range exclusive {
		var on []string
		for _, n := range g {
			if set[n] {
				on = append(on, n)
			}
		}
		if len(on) > 1 {
			return nil, fmt.Errorf("prov-db-tags: tags %s are exclusive (they set the same variables)", strings.Join(on, ", "))
		}
	}
	return set, nil
}
