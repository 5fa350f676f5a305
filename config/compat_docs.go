package config

import (
	"fmt"
	"sort"
	"strings"
)

// CompatKeysMarkdown renders, for docs/compat.md, every key of replication-manager's
// catalogue and of ours, by status: implemented (with both defaults and the note on a
// deliberate difference), accepted without effect, ours only; then the aliases. A test keeps
// the document in sync (TestDocsCompatKeys).
func CompatKeysMarkdown() string {
	cell := func(s string) string {
		if s == "" {
			return `""`
		}
		return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
	}
	var impl, noEffect, ours []string
	for _, k := range registry {
		up, isUp := LookupUpstream(k.Name)
		def := k.Default
		if k.Secret && def != "" {
			def = MaskedValue
		}
		switch {
		case noEffectYet[k.Name] && isUp:
			noEffect = append(noEffect, fmt.Sprintf("| `%s` | %s | %s | %s |", k.Name, k.Kind, cell(def), cell(up.Default)))
		case noEffectYet[k.Name]:
			noEffect = append(noEffect, fmt.Sprintf("| `%s` | %s | %s | (ours) |", k.Name, k.Kind, cell(def)))
		case isUp:
			impl = append(impl, fmt.Sprintf("| `%s` | %s | %s | %s | %s |", k.Name, k.Kind, cell(def), cell(up.Default),
				strings.ReplaceAll(differences[k.Name], "|", `\|`)))
		default:
			ours = append(ours, fmt.Sprintf("| `%s` | %s | %s | %s |", k.Name, k.Kind, cell(def), strings.ReplaceAll(k.Help, "|", `\|`)))
		}
	}
	for _, up := range upstream {
		if _, ok := Canonical(up.Name); ok {
			continue
		}
		def := up.Default
		if secretName(up.Name) && def != "" {
			def = MaskedValue
		}
		noEffect = append(noEffect, fmt.Sprintf("| `%s` | %s | | %s |", up.Name, up.Kind, cell(def)))
	}
	sort.Strings(noEffect)
	var b strings.Builder
	fmt.Fprintf(&b, "%d keys of replication-manager's catalogue; %d implemented, %d accepted without effect yet (with our own keys of that status), %d keys of ours only.\n\n",
		len(upstream), len(impl), len(noEffect), len(ours))
	fmt.Fprintf(&b, "### Implemented (%d)\n\n| key | type | default here | default upstream | deliberate difference |\n|---|---|---|---|---|\n", len(impl))
	b.WriteString(strings.Join(impl, "\n") + "\n\n")
	fmt.Fprintf(&b, "### Accepted, no effect yet (%d)\n\nA file, `DEFAULT_<KEY>` variable or command-line flag may set these: the value is checked against the key's type, kept, printed by `config check` and named in the one warning at start. An empty *default here* is a key that is not one of ours at all.\n\n| key | type | default here | default upstream |\n|---|---|---|---|\n", len(noEffect))
	b.WriteString(strings.Join(noEffect, "\n") + "\n\n")
	fmt.Fprintf(&b, "### Ours only (%d)\n\n| key | type | default | meaning |\n|---|---|---|---|\n", len(ours))
	b.WriteString(strings.Join(ours, "\n") + "\n\n")
	b.WriteString("### Aliases (old names, accepted in files and on the command line)\n\n| alias | key |\n|---|---|\n")
	al := Aliases()
	names := make([]string, 0, len(al))
	for a := range al {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", a, al[a])
	}
	return b.String()
}
