package config

import (
	"math"
	"sort"
	"strings"
)

// Environment is the File of problems and origins of values set by environment variables.
const Environment = "environment"

// EnvPrefix starts the environment variables read as [Default] keys.
const EnvPrefix = "DEFAULT_"

// EnvName returns the environment variable that sets key at the [Default] level:
// DEFAULT_ and the key in upper case with '-' as '_' (failover-mode -> DEFAULT_FAILOVER_MODE).
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// envSection turns DEFAULT_<KEY> variables into a section applied right above [Default]
// (below the cluster tables and the command line), as replication-manager bound its
// [Default] settings to the environment. Only canonical key names are read (not aliases: a
// DEFAULT_USER or DEFAULT_HOSTS of an unrelated program must not become a credential or a
// host list); a DEFAULT_ variable naming no key is not ours and is ignored. A bad value is a
// problem naming the variable, never its value when the key is secret.
func envSection(env []string) (*section, []Problem) {
	if len(env) == 0 {
		return nil, nil
	}
	sec := &section{file: Environment, values: map[string]entry{}, accepted: map[string]entry{}}
	var problems []Problem
	vars := map[string]string{}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || len(name) == len(EnvPrefix) {
			continue
		}
		vars[name] = value // the last one wins, as in os.Getenv
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		value := vars[name]
		key := strings.ToLower(strings.ReplaceAll(name[len(EnvPrefix):], "_", "-"))
		if k, ok := Lookup(key); ok {
			if key == "include" {
				problems = append(problems, Problem{File: Environment, Key: name,
					Message: "include is only read from [Default] of the main file"})
				continue
			}
			v, err := parseText(k, value)
			if err != nil {
				problems = append(problems, Problem{File: Environment, Key: name, Message: err.Error()})
				continue
			}
			if msgs := checkValue(k, v); len(msgs) > 0 {
				for _, m := range msgs {
					problems = append(problems, Problem{File: Environment, Key: name, Message: m})
				}
				continue
			}
			sec.values[k.Name] = entry{key: name, value: v}
			continue
		}
		if up, ok := acceptedKey(key); ok {
			text, err := acceptedText(up, value)
			if err != nil {
				problems = append(problems, Problem{File: Environment, Key: name, Message: err.Error()})
				continue
			}
			sec.accepted[up.Name] = entry{key: name, value: text}
		}
	}
	return sec, problems
}

// acceptedKeyOf gives an upstream key the Key form the converters want: its kind, secret by
// name, and the widest range of its kind (upstream checked no range).
func acceptedKeyOf(up UpstreamKey) Key {
	k := Key{Name: up.Name, Kind: up.Kind, Secret: secretName(up.Name)}
	switch up.Kind {
	case KindInt:
		k.Min, k.Max = math.MinInt32, math.MaxInt32
	case KindFloat:
		k.Min, k.Max = -math.MaxFloat64, math.MaxFloat64
	}
	return k
}

// acceptedText checks a value of an upstream key accepted without effect against the key's
// type and returns it as text.
func acceptedText(up UpstreamKey, v any) (string, error) {
	k := acceptedKeyOf(up)
	tv, err := convert(k, v)
	if err != nil {
		return "", err
	}
	return formatValue(tv), nil
}

// describeAccepted is the value of an accepted key as `config check` prints it.
func describeAccepted(name, value string) string {
	up, _ := LookupUpstream(name)
	if up.Kind == KindString {
		return tomlString(Mask(name, value))
	}
	return value
}
