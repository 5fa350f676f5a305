package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxClusterNameLen is the longest accepted cluster name, in bytes.
const MaxClusterNameLen = 64

// ValidateClusterName checks a cluster name: 1 to MaxClusterNameLen ASCII
// letters, digits, '_', '.' or '-', starting with a letter or a digit, without
// "..". A cluster name becomes a directory under monitoring-datadir, a file
// name, a TOML table and a URL path segment, so nothing that could climb out of
// a directory ('/', '\', "..", a leading dot), hide (control characters, NUL)
// or be mistaken for something else (spaces, quotes) is accepted.
//
// It is the one rule for every way a cluster is named: the tables of the
// configuration files (Load) and the API (adding a cluster, {cluster} path
// values). The error says what is wrong, quoting the offending character.
func ValidateClusterName(name string) error {
	if name == "" {
		return fmt.Errorf("empty cluster name")
	}
	if len(name) > MaxClusterNameLen {
		return fmt.Errorf("cluster name too long: %d bytes, at most %d", len(name), MaxClusterNameLen)
	}
	for i, r := range name {
		ok := r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return fmt.Errorf("cluster name holds %s; allowed: letters, digits, '_', '.', '-'", strconv.QuoteRuneToASCII(r))
		}
		if i == 0 && (r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("cluster name must start with a letter or a digit, not %s", strconv.QuoteRune(r))
		}
	}
	if strings.Contains(name, "..") {
		return fmt.Errorf(`cluster name holds ".."`)
	}
	return nil
}

// maxShownName bounds how much of a table or key name a problem prints.
const maxShownName = 80

// shownName renders a table or key name for a problem line: as written when it
// is short and printable, else quoted (control characters escaped) and cut, so
// a hostile name can neither forge lines nor flood a log.
func shownName(s string) string {
	cut := false
	if len(s) > maxShownName {
		n := maxShownName
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) >= 0 || cut {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s
}
