// Package slowlog reads MariaDB's slow query log, as a file (log_output=FILE, or a copy the
// jobs collected) or as rows of mysql.slow_log (log_output=TABLE), and groups its
// statements by digest: the statement with its literals replaced, so that the same query
// with other values counts once. Pure: no I/O but the reader it is given.
package slowlog

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Entry is one logged statement.
type Entry struct {
	Time         time.Time `json:"time"`
	User         string    `json:"user"`
	Host         string    `json:"host"`
	DB           string    `json:"db"`
	QueryTime    float64   `json:"queryTime"` // seconds
	LockTime     float64   `json:"lockTime"`  // seconds
	RowsSent     int64     `json:"rowsSent"`
	RowsExamined int64     `json:"rowsExamined"`
	SQL          string    `json:"sql"`
}

var (
	// "# User@Host: app[app] @ localhost [127.0.0.1]" or "... @  [10.0.0.2]"
	userHostRe = regexp.MustCompile(`^# User@Host:\s*([^\[\s]*)\[[^\]]*\]\s*@\s*(\S*)\s*\[([^\]]*)\]`)
	schemaRe   = regexp.MustCompile(`Schema: (\S*)`)
	fieldRe    = regexp.MustCompile(`(Query_time|Lock_time|Rows_sent|Rows_examined):\s*([0-9.]+)`)
	stampRe    = regexp.MustCompile(`^SET timestamp=(\d+);$`)
)

// Parse reads a slow query log and returns its last max entries (all when max <= 0),
// oldest first. Lines it does not know (server start banners, "# Time:" lines, the extra
// fields of log_slow_verbosity) are skipped; a statement spans every line up to the next
// "# " header.
func Parse(r io.Reader, max int) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var out []Entry
	var cur *Entry
	var sql []string
	flush := func() {
		if cur != nil {
			cur.SQL = strings.TrimSpace(strings.Join(sql, "\n"))
			if cur.SQL != "" {
				out = append(out, *cur)
				if max > 0 && len(out) > 2*max {
					out = append(out[:0], out[len(out)-max:]...)
				}
			}
		}
		cur, sql = nil, nil
	}
	inHeader := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# User@Host:"):
			flush()
			cur = &Entry{}
			if m := userHostRe.FindStringSubmatch(line); m != nil {
				cur.User, cur.Host = m[1], m[2]
				if cur.Host == "" {
					cur.Host = m[3]
				}
			}
			inHeader = true
		case strings.HasPrefix(line, "# "):
			if cur == nil {
				continue // "# Time:" before the entry, or a banner
			}
			if !inHeader { // a header after a statement without its own User@Host
				flush()
				continue
			}
			if m := schemaRe.FindStringSubmatch(line); m != nil {
				cur.DB = m[1]
			}
			for _, f := range fieldRe.FindAllStringSubmatch(line, -1) {
				switch f[1] {
				case "Query_time":
					cur.QueryTime, _ = strconv.ParseFloat(f[2], 64)
				case "Lock_time":
					cur.LockTime, _ = strconv.ParseFloat(f[2], 64)
				case "Rows_sent":
					cur.RowsSent, _ = strconv.ParseInt(f[2], 10, 64)
				case "Rows_examined":
					cur.RowsExamined, _ = strconv.ParseInt(f[2], 10, 64)
				}
			}
		case cur == nil:
			// banner lines ("/usr/sbin/mariadbd, Version: ...", "Tcp port: ...", "Time Id Command Argument")
		case inHeader && stampRe.MatchString(line):
			n, _ := strconv.ParseInt(stampRe.FindStringSubmatch(line)[1], 10, 64)
			cur.Time = time.Unix(n, 0).UTC()
			inHeader = false
		case inHeader && strings.HasPrefix(line, "use ") && strings.HasSuffix(line, ";"):
			cur.DB = strings.Trim(strings.TrimSuffix(strings.TrimPrefix(line, "use "), ";"), "`")
		default:
			inHeader = false
			sql = append(sql, line)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out, nil
}

// Digest is one statement shape with its totals.
type Digest struct {
	ID           string    `json:"digest"` // 16 hex digits of the normalized text's SHA-256
	Text         string    `json:"digestText"`
	Count        int       `json:"count"`
	TotalTime    float64   `json:"totalTime"` // seconds
	MaxTime      float64   `json:"maxTime"`
	AvgTime      float64   `json:"avgTime"`
	RowsExamined int64     `json:"rowsExamined"`
	RowsSent     int64     `json:"rowsSent"`
	FirstSeen    time.Time `json:"firstSeen"`
	LastSeen     time.Time `json:"lastSeen"`
	Example      string    `json:"example"` // the slowest occurrence
	DB           string    `json:"db"`
}

// Digests groups entries by normalized statement, the costliest (total time) first.
func Digests(entries []Entry) []Digest {
	by := map[string]*Digest{}
	for _, e := range entries {
		text := Normalize(e.SQL)
		sum := sha256.Sum256([]byte(e.DB + "\x00" + text))
		id := hex.EncodeToString(sum[:8])
		d := by[id]
		if d == nil {
			d = &Digest{ID: id, Text: text, DB: e.DB, FirstSeen: e.Time, LastSeen: e.Time}
			by[id] = d
		}
		d.Count++
		d.TotalTime += e.QueryTime
		d.RowsExamined += e.RowsExamined
		d.RowsSent += e.RowsSent
		if e.QueryTime >= d.MaxTime {
			d.MaxTime, d.Example = e.QueryTime, e.SQL
		}
		if !e.Time.IsZero() && (d.FirstSeen.IsZero() || e.Time.Before(d.FirstSeen)) {
			d.FirstSeen = e.Time
		}
		if e.Time.After(d.LastSeen) {
			d.LastSeen = e.Time
		}
	}
	out := make([]Digest, 0, len(by))
	for _, d := range by {
		d.AvgTime = d.TotalTime / float64(d.Count)
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TotalTime != out[j].TotalTime {
			return out[i].TotalTime > out[j].TotalTime
		}
		return out[i].ID < out[j].ID
	})
	return out
}

var (
	commentRe = regexp.MustCompile(`/\*.*?\*/|--[^\n]*|#[^\n]*`)
	numberRe  = regexp.MustCompile(`\b(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)\b`)
	inRe      = regexp.MustCompile(`\bin ?\( ?\?( ?, ?\?)* ?\)`)
	listRe    = regexp.MustCompile(`\(\s*\?(\s*,\s*\?)+\s*\)`)
	rowsRe    = regexp.MustCompile(`(\(\?\+?\))(\s*,\s*\(\?\+?\))+`)
	spaceRe   = regexp.MustCompile(`\s+`)
)

// Normalize returns a statement's shape: comments and the final ";" dropped, string and
// number literals replaced by ?, IN lists and multi-row VALUES folded, whitespace
// collapsed, lower case.
func Normalize(sql string) string {
	var b strings.Builder
	// Strings first, by hand: a quote inside a string ends nothing.
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		if c != '\'' && c != '"' {
			b.WriteByte(c)
			continue
		}
		for i++; i < len(sql); i++ {
			if sql[i] == '\\' {
				i++
				continue
			}
			if sql[i] == c {
				if i+1 < len(sql) && sql[i+1] == c { // doubled quote
					i++
					continue
				}
				break
			}
		}
		b.WriteByte('?')
	}
	s := commentRe.ReplaceAllString(b.String(), " ")
	// A number inside a name (t1, col_2) has no word boundary before it and stays.
	s = numberRe.ReplaceAllString(s, "?")
	// The file logs a statement with its ";", the table without: one shape either way.
	s = strings.ToLower(spaceRe.ReplaceAllString(strings.TrimRight(strings.TrimSpace(s), "; "), " "))
	s = inRe.ReplaceAllString(s, "in (?+)") // IN lists of any length are one shape
	s = listRe.ReplaceAllString(s, "(?+)")
	s = rowsRe.ReplaceAllString(s, "${1}+")
	return s
}
