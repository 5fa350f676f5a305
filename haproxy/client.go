package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"replication-manager-pro/ipv6"
)

// DefaultTimeout bounds a runtime API call whose context has no earlier deadline.
const DefaultTimeout = 2 * time.Second

// maxAnswer bounds what is read from one call ("show servers state" of a large config).
const maxAnswer = 16 << 20

// Client talks to HAProxy's runtime API (the "stats socket ... level admin" listener), one
// connection per call in non-interactive mode: the commands, a newline, the answers, EOF.
type Client struct {
	Network string        // "unix" (the stats socket path) or "tcp" (ipv4@127.0.0.1:<haproxy-api-port>)
	Address string        // socket path or host:port
	Timeout time.Duration // per call when the context allows longer; 0 = DefaultTimeout
}

// NewClient returns a client of the unix stats socket at path.
func NewClient(socket string) *Client { return &Client{Network: "unix", Address: socket} }

// Error is a command HAProxy refused, with its answer.
type Error struct {
	Command string
	Answer  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("haproxy %q: %s", e.Command, e.Answer)
}

// ErrNoSuchServer is matched (errors.Is) by answers naming an unknown backend or server.
var ErrNoSuchServer = errors.New("no such backend or server")

// Is lets errors.Is(err, ErrNoSuchServer) recognise HAProxy's answers.
func (e *Error) Is(target error) bool {
	if target != ErrNoSuchServer {
		return false
	}
	a := strings.ToLower(e.Answer)
	return strings.Contains(a, "no such server") || strings.Contains(a, "no such backend") || strings.Contains(a, "can't find backend")
}

// Raw sends one line (one command, or several separated by ';') and returns the answer.
// HAProxy's answer to a refused command is text, not an error: use the typed methods.
func (c *Client) Raw(ctx context.Context, line string) (string, error) {
	if strings.ContainsAny(line, "\n\r") {
		return "", fmt.Errorf("haproxy runtime: command %q has a line break", line)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime %s: %w", c.Address, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	if err := conn.SetDeadline(dl); err != nil {
		return "", fmt.Errorf("haproxy runtime %s: %w", c.Address, err)
	}
	// A cancelled context interrupts a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime %s: send %q: %w", c.Address, line, ctxErr(ctx, err))
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		return string(b), fmt.Errorf("haproxy runtime %s: answer to %q: %w", c.Address, line, ctxErr(ctx, err))
	}
	return string(b), nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// answers splits the answer to a ';'-separated line into one answer per command: each
// ends with an empty line.
func answers(out string) []string {
	var res []string
	var cur []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxAnswer)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			res = append(res, strings.Join(cur, "\n"))
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	if len(cur) > 0 {
		res = append(res, strings.Join(cur, "\n"))
	}
	return res
}

// checkName refuses names that would break the command line.
func checkName(kind, n string) error {
	if n == "" || strings.ContainsAny(n, " \t;/\\\n\r#") {
		return fmt.Errorf("haproxy runtime: %s name %q is empty or has a forbidden character", kind, n)
	}
	return nil
}

func target(backend, server string) (string, error) {
	if err := checkName("backend", backend); err != nil {
		return "", err
	}
	if err := checkName("server", server); err != nil {
		return "", err
	}
	return backend + "/" + server, nil
}

// Exec runs commands that answer nothing on success ("set server ... state ...",
// "shutdown sessions ...", "enable server ...") in one connection, in order. HAProxy
// runs every command even after one fails; every refusal is returned, joined.
func (c *Client) Exec(ctx context.Context, cmds ...string) error {
	if len(cmds) == 0 {
		return nil
	}
	for _, cmd := range cmds {
		if strings.Contains(cmd, ";") {
			return fmt.Errorf("haproxy runtime: command %q has a ';'", cmd)
		}
	}
	out, err := c.Raw(ctx, strings.Join(cmds, "; "))
	if err != nil {
		return err
	}
	ans := answers(out)
	var errs []error
	for i, cmd := range cmds {
		a := ""
		if i < len(ans) {
			a = strings.TrimSpace(ans[i])
		} else {
			errs = append(errs, &Error{Command: cmd, Answer: "no answer (connection closed early)"})
			continue
		}
		if a != "" {
			errs = append(errs, &Error{Command: cmd, Answer: a})
		}
	}
	return errors.Join(errs...)
}

// SetServerState sets a slot's administrative state (ready, drain or maint).
func (c *Client) SetServerState(ctx context.Context, backend, server string, st AdminState) error {
	t, err := target(backend, server)
	if err != nil {
		return err
	}
	switch st {
	case Ready, Drain, Maint:
	default:
		return fmt.Errorf("haproxy runtime: state %q is not ready, drain or maint", st)
	}
	return c.Exec(ctx, stateCommand(t, st))
}

func stateCommand(target string, st AdminState) string {
	return "set server " + target + " state " + string(st)
}

// EnableServer leaves maintenance (same as state ready).
func (c *Client) EnableServer(ctx context.Context, backend, server string) error {
	t, err := target(backend, server)
	if err != nil {
		return err
	}
	return c.Exec(ctx, "enable server "+t)
}

// DisableServer enters maintenance (same as state maint).
func (c *Client) DisableServer(ctx context.Context, backend, server string) error {
	t, err := target(backend, server)
	if err != nil {
		return err
	}
	return c.Exec(ctx, "disable server "+t)
}

// ShutdownSessions closes every session open to a slot: its clients see their connection
// drop and reconnect wherever the backend now routes.
func (c *Client) ShutdownSessions(ctx context.Context, backend, server string) error {
	t, err := target(backend, server)
	if err != nil {
		return err
	}
	return c.Exec(ctx, "shutdown sessions server "+t)
}

// SetServerAddr changes a slot's address and port (IPv4 or IPv6, unbracketed on the wire).
func (c *Client) SetServerAddr(ctx context.Context, backend, server string, addr ipv6.HostPort) error {
	t, err := target(backend, server)
	if err != nil {
		return err
	}
	if err := checkName("address", addr.Host); err != nil {
		return err
	}
	cmd := fmt.Sprintf("set server %s addr %s port %d", t, addr.Host, addr.Port)
	out, err := c.Raw(ctx, cmd)
	if err != nil {
		return err
	}
	a := strings.TrimSpace(out)
	// Success is a notice: "IP changed from ... to ...", "no need to change the addr, ...".
	if strings.Contains(a, "IP changed") || strings.Contains(a, "no need to change the addr") || strings.Contains(a, "port changed") {
		return nil
	}
	return &Error{Command: cmd, Answer: a}
}

// ServerState is one line of "show servers state".
type ServerState struct {
	BackendID  int
	Backend    string
	ID         int
	Name       string
	Addr       string // as HAProxy resolved it, unbracketed
	Port       int
	OpState    int // 0 stopped (down), 1 starting, 2 running (up), 3 stopping
	AdminFlags int // SRV_ADMF_* bits
	Weight     int // current user weight
	CheckState int // srv_check_state bits
}

// HAProxy's SRV_ADMF_* bits (srv_admin_state): forced, inherited, resolution and hostname
// maintenance (0x04 is the "disabled" keyword's marker, not a maintenance by itself), forced
// and inherited drain.
const (
	admMaint = 0x01 | 0x02 | 0x20 | 0x40
	admDrain = 0x08 | 0x10
)

// Admin is the administrative state the flags give.
func (s ServerState) Admin() AdminState {
	switch {
	case s.AdminFlags&admMaint != 0:
		return Maint
	case s.AdminFlags&admDrain != 0:
		return Drain
	default:
		return Ready
	}
}

// Up reports a slot HAProxy would send traffic to if it were ready (health check passing).
func (s ServerState) Up() bool { return s.OpState == 1 || s.OpState == 2 }

// ShowServersState lists the slots of one backend ("" for all backends).
func (c *Client) ShowServersState(ctx context.Context, backend string) ([]ServerState, error) {
	cmd := "show servers state"
	if backend != "" {
		if err := checkName("backend", backend); err != nil {
			return nil, err
		}
		cmd += " " + backend
	}
	out, err := c.Raw(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return parseServersState(cmd, out)
}

// parseServersState reads the version-1 format: a "1" line, a "# be_id be_name ..." header
// naming the columns, then one line per server.
func parseServersState(cmd, out string) ([]ServerState, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "1" || !strings.HasPrefix(lines[1], "# ") {
		return nil, &Error{Command: cmd, Answer: strings.TrimSpace(out)}
	}
	col := map[string]int{}
	for i, name := range strings.Fields(strings.TrimPrefix(lines[1], "# ")) {
		col[name] = i
	}
	for _, need := range []string{"be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_port"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("haproxy %q: header lacks %s: %q", cmd, need, lines[1])
		}
	}
	var res []ServerState
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) < len(col) {
			return nil, fmt.Errorf("haproxy %q: short line %q", cmd, l)
		}
		num := func(name string) int {
			i, ok := col[name]
			if !ok {
				return 0
			}
			n, _ := strconv.Atoi(f[i])
			return n
		}
		res = append(res, ServerState{
			BackendID: num("be_id"), Backend: f[col["be_name"]],
			ID: num("srv_id"), Name: f[col["srv_name"]],
			Addr: f[col["srv_addr"]], Port: num("srv_port"),
			OpState: num("srv_op_state"), AdminFlags: num("srv_admin_state"),
			Weight: num("srv_uweight"), CheckState: num("srv_check_state"),
		})
	}
	return res, nil
}
