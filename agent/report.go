package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/orchestrator/slapos"
)

// errNoReport is a manager without the report route (replication-manager itself).
var errNoReport = errors.New("the manager has no report route")

// report posts one report to the node's report route.
func (c *client) report(ctx context.Context, rep slapos.AgentReport) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.nodeURL(slapos.ActionReport), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.credential)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return errNoReport
	case http.StatusUnauthorized:
		return errUnauthorized
	}
	var b [256]byte
	n, _ := resp.Body.Read(b[:])
	return fmt.Errorf("report: HTTP %d: %s", resp.StatusCode, firstLine(b[:n]))
}

// reporter hands what the agent did to the manager (its report route, docs/slapos.md), in
// order and in the background: neither a slow manager nor one that is down holds an action
// up, and reports beyond the queue's room are dropped (the partition's log keeps them all).
// A manager without the route is not asked again.
type reporter struct {
	c   *client
	log logrus.FieldLogger
	q   chan slapos.AgentReport
	off atomic.Bool
}

func newReporter(c *client, log logrus.FieldLogger) *reporter {
	return &reporter{c: c, log: log, q: make(chan slapos.AgentReport, 64)}
}

// send queues a report; it never blocks.
func (r *reporter) send(rep slapos.AgentReport) {
	if r == nil || r.off.Load() {
		return
	}
	if rep.At.IsZero() {
		rep.At = time.Now().UTC()
	}
	select {
	case r.q <- rep:
	default:
	}
}

// loop posts the queued reports until ctx ends, then for at most two seconds more (the last
// ones tell the service was stopped with the agent).
func (r *reporter) loop(ctx context.Context) {
	for {
		select {
		case rep := <-r.q:
			r.post(ctx, rep)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				select {
				case rep := <-r.q:
					r.post(fctx, rep)
				default:
					return
				}
				if fctx.Err() != nil {
					return
				}
			}
		}
	}
}

func (r *reporter) post(ctx context.Context, rep slapos.AgentReport) {
	if r.off.Load() {
		return
	}
	err := r.c.report(ctx, rep)
	switch {
	case errors.Is(err, errNoReport):
		r.off.Store(true)
		r.log.Info("the manager takes no agent reports (replication-manager?): what the agent does stays in this log")
	case err != nil:
		r.log.WithError(err).WithField("report", rep.Action).Debug("report not delivered")
	}
}

// outcome is a report's result and error for err.
func outcome(err error) (string, string) {
	if err != nil {
		return "failed", err.Error()
	}
	return "done", ""
}

// pidDetail is "pid N" for a status with a pid.
func pidDetail(st Status) string {
	if st.Pid > 0 {
		return "pid " + strconv.Itoa(st.Pid)
	}
	return ""
}
