package config

import (
	"fmt"
	"strings"
)

// KeyTableMarkdown renders the table of every key (type, default, allowed range
// of a number, meaning) for
// docs/configuration.md; a test keeps the document in sync with the registry.
func KeyTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| key | type | default | range | meaning |\n|---|---|---|---|---|\n")
	for _, k := range registry {
		def := "`" + k.Default + "`"
		if k.Default == "" {
			def = `""`
		}
		help := k.Help
		if k.Secret {
			help += " (secret: printed as `" + MaskedValue + "`)"
		}
		rng := ""
		if k.Ranged() {
			rng = k.Range()
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Name, k.Kind, strings.ReplaceAll(def, "|", `\|`), rng, strings.ReplaceAll(help, "|", `\|`))
	}
	b.WriteString("\nAliases (old or alternative names, accepted in files and on the command line):\n\n| alias | key |\n|---|---|\n")
	al := Aliases()
	names := make([]string, 0, len(al))
	for a := range al {
		names = append(names, a)
	}
	sortStrings(names)
	for _, a := range names {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", a, al[a])
	}
	return b.String()
}
