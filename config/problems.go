package config

import (
	"sort"
	"strconv"
	"strings"
)

// CommandLine is the File of problems found in command-line overrides.
const CommandLine = "command line"

// Problem is one thing wrong with the configuration.
type Problem struct {
	File    string // file path as given or found; CommandLine for overrides
	Section string // table name as written in the file, without brackets; "" if none
	Key     string // key as written (or canonical key for derived checks); "" if none
	Message string // the reason; never contains a secret value
}

// Error returns "<file>: [<section>] <key>: <reason>". Parts that do not apply
// are left out: "<file>: <key>: <reason>" for a command-line override,
// "<file>: [<section>] <reason>" for a whole table, "<file>: <reason>" for a file.
func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	b.WriteString(": ")
	if p.Section != "" {
		b.WriteString("[" + shownName(p.Section) + "] ")
	}
	if p.Key != "" {
		b.WriteString(shownName(p.Key) + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is the error returned by Load: every problem found, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// dedupe sorts problems by file, section, key and message and drops repeats
// (a bad value in [Default] is found once per cluster inheriting it).
func dedupe(ps []Problem) Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Section != b.Section {
			return a.Section < b.Section
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Message < b.Message
	})
	out := Problems{}
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// suggest returns ` (did you mean "x"?)`-style text for an unknown key, or "".
func suggest(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return ""
	}
	best, bestD := "", 1<<30
	consider := func(cand string) {
		d := editDistance(n, cand, bestD)
		if len(n) >= 4 && strings.HasPrefix(cand, n) {
			// a truncated key: prefer the shortest completion
			d = min(d, 1+(len(cand)-len(n))/8)
		}
		if d < bestD || (d == bestD && cand < best) {
			best, bestD = cand, d
		}
	}
	for _, k := range registry {
		consider(k.Name)
	}
	for a := range aliases {
		consider(a)
	}
	for _, k := range upstream {
		consider(k.Name)
	}
	limit := 2 + len(n)/6
	if bestD > limit {
		return ""
	}
	return "; did you mean " + strconv.Quote(best) + "?"
}

// editDistance is the Levenshtein distance between a and b, giving up early
// (returning bound+1) when it cannot be below bound.
func editDistance(a, b string, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= bound {
			return bound + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
