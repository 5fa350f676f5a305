package config

import (
	"github.com/spf13/pflag"
)

// AddFlags registers one typed flag --<key> per configuration key, with its
// built-in default and meaning. Flags already defined in fs are left alone.
// Use Overrides(fs) after parsing to get the values the user actually set.
func AddFlags(fs *pflag.FlagSet) {
	d := Defaults()
	for _, k := range registry {
		if fs.Lookup(k.Name) != nil {
			continue
		}
		help := k.Help
		if k.Secret {
			help += " (secret)"
		}
		switch v := fieldOf(&d, k).Interface().(type) {
		case string:
			if k.Secret && v != "" {
				// do not show default secrets in --help
				fs.String(k.Name, v, help)
				fs.Lookup(k.Name).DefValue = MaskedValue
				continue
			}
			fs.String(k.Name, v, help)
		case bool:
			fs.Bool(k.Name, v, help)
		case int:
			fs.Int(k.Name, v, help)
		case float64:
			fs.Float64(k.Name, v, help)
		}
	}
	// replication-manager's other keys, so that its command lines keep working: accepted,
	// checked against their type, no effect yet.
	for _, up := range upstream {
		if _, ok := Canonical(up.Name); ok || fs.Lookup(up.Name) != nil {
			continue
		}
		help := "replication-manager key, accepted, no effect yet"
		switch up.Kind {
		case KindBool:
			fs.Bool(up.Name, up.Default == "true", help)
		default:
			fs.String(up.Name, up.Default, help)
			if secretName(up.Name) && up.Default != "" {
				fs.Lookup(up.Name).DefValue = MaskedValue
			}
		}
	}
}

// Overrides returns the configuration flags the user set on the command line
// (key -> value text), for Options.Overrides. Unset flags are not included, so
// file values are only overridden by what was typed.
func Overrides(fs *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.Visit(func(f *pflag.Flag) {
		if _, ok := Lookup(f.Name); ok {
			out[f.Name] = f.Value.String()
		} else if _, ok := acceptedKey(f.Name); ok {
			out[f.Name] = f.Value.String()
		}
	})
	return out
}
