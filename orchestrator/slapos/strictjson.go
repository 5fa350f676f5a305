package slapos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkJSON verifies that data is exactly one JSON object in valid UTF-8, without a lone
// UTF-16 surrogate escape and without a key twice in one object: encoding/json would let
// each of these through (the last duplicate winning, bad bytes turned into U+FFFD). The
// error names the position (line, column in characters, byte offset) and, for a duplicate,
// the path of the object holding it ("repman-cluster-dict: cluster1").
func checkJSON(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty document: want a JSON object of parameters")
	}
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Errorf("invalid UTF-8 at %s", position(data, off))
		}
		off += size
	}
	if err := checkStructure(data); err != nil {
		return err
	}
	return checkSurrogates(data)
}

// position tells where byte offset off of data is: "line 2, column 7 (byte offset 31)".
func position(data []byte, off int) string {
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	col := 1 + utf8.RuneCount(data[start:off])
	return fmt.Sprintf("line %d, column %d (byte offset %d)", line, col, off)
}

type jsonFrame struct {
	object    bool
	path      string
	keys      map[string]bool
	last      string // the key whose value is being read
	expectKey bool
	index     int
}

// checkStructure walks the tokens: one object, nothing after it, no duplicate key.
func checkStructure(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*jsonFrame
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not a JSON document: %s at %s", se.Error(), position(data, int(se.Offset)))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("not a JSON document: unexpected end at %s", position(data, len(data)))
		}
		return fmt.Errorf("not a JSON document: %v", err)
	}
	// child names the path of a value about to open in the top frame.
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		var el string
		if f.object {
			el = keyName(f.last)
		} else {
			el = "[" + strconv.Itoa(f.index) + "]"
		}
		switch {
		case f.path == "":
			return el
		case f.object:
			return f.path + ": " + el
		}
		return f.path + el
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.expectKey = true
		} else {
			f.index++
		}
	}
	for first := true; first || len(stack) > 0; first = false {
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return fmt.Errorf("parameters must be a JSON object, got %s", jsonKind(tok))
			}
		}
		top := (*jsonFrame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			k := tok.(string) // the decoder only gives a string here
			if top.keys[k] {
				where := ""
				if top.path != "" {
					where = top.path + ": "
				}
				return fmt.Errorf("%sduplicate key %s at %s", where, strconv.Quote(truncate(k, 64)), position(data, keyStart(data, int(dec.InputOffset()))))
			}
			top.keys[k] = true
			top.last = k
			top.expectKey = false
			continue
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				stack = append(stack, &jsonFrame{object: true, path: child(), keys: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &jsonFrame{path: child()})
			default: // ']' ('}' is handled with the keys)
				stack = stack[:len(stack)-1]
				valueDone()
			}
		default:
			valueDone()
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("not a JSON document: unexpected data after the JSON object at %s", position(data, int(dec.InputOffset())))
	}
	return nil
}

// keyStart returns the offset of the opening quote of the key string ending at end.
func keyStart(data []byte, end int) int {
	for j := end - 2; j >= 0; j-- {
		if data[j] != '"' {
			continue
		}
		n := 0
		for k := j - 1; k >= 0 && data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
	}
	return end
}

func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

// checkSurrogates refuses \uD800-\uDFFF escapes that do not form a pair (encoding/json turns
// them into U+FFFD). data is valid JSON.
func checkSurrogates(data []byte) error {
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !in {
			if c == '"' {
				in = true
			}
			continue
		}
		switch c {
		case '"':
			in = false
		case '\\':
			if i+1 < len(data) && data[i+1] == 'u' && i+6 <= len(data) {
				v, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
				if err == nil && v >= 0xD800 && v <= 0xDFFF {
					ok := false
					if v <= 0xDBFF && i+12 <= len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
						lo, err := strconv.ParseUint(string(data[i+8:i+12]), 16, 32)
						ok = err == nil && lo >= 0xDC00 && lo <= 0xDFFF
					}
					if !ok {
						return fmt.Errorf("invalid UTF-16 escape %s (a lone surrogate) at %s", data[i:i+6], position(data, i))
					}
					i += 11 // the pair
					continue
				}
			}
			i++ // the escaped character
		}
	}
	return nil
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// keyName prints a key from the input for a message: as is when plain, else quoted and
// truncated, so that no control character or huge key reaches a terminal or a log.
func keyName(k string) string {
	if plainKey.MatchString(k) {
		return k
	}
	return strconv.Quote(truncate(k, 64))
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}

// suggest returns the candidate a mistyped key most likely meant ("" when none is close):
// equal but for case and '_' versus '-', or at most two edits away (one for short keys).
func suggest(k string, candidates []string) string {
	if len(k) > 100 {
		return ""
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }
	nk := norm(k)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := editDistance(nk, norm(c))
		limit := 2
		if len(c) <= 6 {
			limit = 1
		}
		if d <= limit && (d < bestD || d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
