package slapos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
)

// ActionReport is the route the native partition agent reports to (new, no SlapOS script
// calls it): POST /api/clusters/{c}/servers/{host}/{port}/report with the node's credential
// and an AgentReport as JSON, so that what an agent did (a start, a stop, a restart after a
// crash, a job) is seen in the manager's event log beside what the manager asked, not only
// in the partition's own log. 204 when taken.
const ActionReport = "report"

// AgentReport is one thing a partition agent did.
type AgentReport struct {
	// Action is what was done: start, stop, restart, config-change, autostart,
	// crash-restart, job:<task>...
	Action string `json:"action"`
	// Via is why: watch, need-start (legacy polling), supervisor, jobs...
	Via string `json:"via,omitempty"`
	// Result is done, unchanged or failed.
	Result string `json:"result"`
	// Error is the failure, when Result is failed.
	Error string `json:"error,omitempty"`
	// Detail is one short line more (a pid, a configuration left unchanged...).
	Detail string `json:"detail,omitempty"`
	// At is when the agent finished the action (its clock); zero: when received.
	At time.Time `json:"at,omitzero"`
}

// MaxReportBody bounds a report's body.
const MaxReportBody = 16 << 10

var (
	reportWord    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)
	reportResults = map[string]bool{"done": true, "unchanged": true, "failed": true}
)

// ParseReport reads and checks a report body: unknown fields are allowed (a newer agent),
// wrong values are errors naming the field. Long texts are cut, never refused.
func ParseReport(body io.Reader) (AgentReport, error) {
	var r AgentReport
	dec := json.NewDecoder(io.LimitReader(body, MaxReportBody+1))
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("report: not a JSON object: %w", err)
	}
	if dec.More() {
		return r, errors.New("report: one JSON object expected")
	}
	if !reportWord.MatchString(r.Action) {
		return r, fmt.Errorf("report: field action %q: want 1-64 of a-z 0-9 _ . : -", cut(r.Action, 64))
	}
	if r.Via != "" && !reportWord.MatchString(r.Via) {
		return r, fmt.Errorf("report: field via %q: want 1-64 of a-z 0-9 _ . : -", cut(r.Via, 64))
	}
	if !reportResults[r.Result] {
		return r, fmt.Errorf("report: field result %q: want done, unchanged or failed", cut(r.Result, 64))
	}
	r.Error = oneLine(r.Error, 512)
	r.Detail = oneLine(r.Detail, 256)
	return r, nil
}

// oneLine keeps a text printable on one line and at most n bytes long.
func oneLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return cut(s, n)
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// String is the report as one event message.
func (r AgentReport) String() string {
	s := "agent: " + r.Action
	if r.Via != "" {
		s += " (" + r.Via + ")"
	}
	s += ": " + r.Result
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// report serves ActionReport for node t of cluster name; the caller holds the node's
// credential.
func (h *Handlers) report(w http.ResponseWriter, r *http.Request, name string, t orchestrator.Target) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		write(w, http.StatusMethodNotAllowed, "405 -POST a report")
		return
	}
	rep, err := ParseReport(r.Body)
	if err != nil {
		write(w, http.StatusBadRequest, "400 -"+err.Error())
		return
	}
	h.log().WithFields(logrus.Fields{"cluster": name, "server": t.Addr.String(), "kind": string(t.Kind),
		"action": rep.Action, "via": rep.Via, "result": rep.Result, "error": rep.Error}).Info("slapos: partition agent report")
	if h.Report != nil {
		h.Report(name, t.Addr, rep)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// ReportFunc receives the reports of partition agents (the daemon adds them to the event log).
type ReportFunc func(cluster string, server ipv6.HostPort, r AgentReport)
