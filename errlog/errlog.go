// Package errlog reads MariaDB's error log: "<date> <time> <thread> [<Level>] <text>"
// lines, with the lines that follow one without that prefix (a version banner, a stack
// trace, a failed statement) kept as part of its text. Pure: no I/O but the reader given.
package errlog

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Entry is one logged message.
type Entry struct {
	// Time is as the server wrote it, in the server's own time zone (not stated in the log).
	Time   string `json:"time"`
	Thread int64  `json:"thread"`
	Level  string `json:"level"` // Note, Warning, ERROR...
	Text   string `json:"text"`
}

var lineRe = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2}:\d{2})\s+(\d+)\s+\[([A-Za-z]+)\]\s?(.*)$`)

// Parse reads an error log and returns its last max entries (all when max <= 0), oldest
// first. Lines before the first message (the end of one cut by a partial read) are skipped.
func Parse(r io.Reader, max int) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var out []Entry
	for sc.Scan() {
		line := sc.Text()
		m := lineRe.FindStringSubmatch(line)
		if m == nil {
			if len(out) > 0 && strings.TrimSpace(line) != "" {
				out[len(out)-1].Text += "\n" + line
			}
			continue
		}
		hms := m[2]
		if len(hms) == 7 { // " 5:59:09": the server pads the hour with a space
			hms = "0" + hms
		}
		th, _ := strconv.ParseInt(m[3], 10, 64)
		out = append(out, Entry{Time: m[1] + " " + hms, Thread: th, Level: m[4], Text: m[5]})
		if max > 0 && len(out) > 2*max {
			out = append(out[:0], out[len(out)-max:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out, nil
}
