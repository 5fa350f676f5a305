// Package proxysqltest is a test double of ProxySQL's admin interface, for fast unit tests.
// The real ProxySQL (../shared/tools/proxysql, internal/testenv.NewProxySQL) runs in the
// proxysql package's real tests, and TestContractDoubleAgainstRealProxySQL runs one
// scenario against both and compares their tables: where the double and ProxySQL 2.7.1
// differ, the real one is right (docs/proxysql.md lists what the double got wrong).
//
// AdminDouble listens on a loopback port with the MySQL protocol (the listener of
// github.com/dolthub/vitess, as internal/probefarm does) and keeps the tables the proxysql
// package uses: mysql_servers, mysql_users and mysql_replication_hostgroups, their
// runtime_ copies and their disk copies, with ProxySQL 2.7.1's columns, defaults and
// constraints. It answers the few statement shapes that package sends (see sql.go),
// implements LOAD ... TO RUNTIME and SAVE ... TO DISK, records every statement, and rejects
// anything else with an error naming the statement, so that a change of the client's SQL
// fails a test instead of passing silently. Like ProxySQL's admin, it refuses prepared
// statements.
//
// SimulateReadOnly plays ProxySQL's monitor as 2.7.1 behaves: for the servers of a
// writer/reader pair in runtime_mysql_replication_hostgroups, a read_only=0 server found
// only in the reader hostgroup is copied into the writer one (its reader row stays only
// with WriterIsAlsoReader, true by default as mysql-monitor_writer_is_also_reader is); a
// read_only=1 server found in the writer hostgroup leaves it (and joins the readers if it
// was not there). A server already where its read_only puts it is left alone: ProxySQL
// neither strips a reader row nor adds one the configuration did not have. Moved rows
// vanish from runtime; only the configuration's rows are reloaded by LOAD, after which the
// known read_only states are applied again at once (ProxySQL does it at its next check,
// up to mysql-monitor_read_only_interval later). A backend removed by a LOAD while
// HoldConnections says it has connections in use stays in runtime as OFFLINE_HARD until
// released, as ProxySQL shows it. What the double does not model: connection pools,
// SHUNNED by health checks or lag, query rules, variables, stats tables, the monitor's
// own timing.
package proxysqltest

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	vtlog "github.com/dolthub/vitess/go/vt/log"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/dolthub/vitess/go/vt/sqlparser"

	"replication-manager-pro/ipv6"
)

// Options configure the double.
type Options struct {
	User     string // admin user; default "admin"
	Password string // its password; default "admin"
	Host     string // loopback address to listen on; default 127.0.0.1 ("::1" works too)
	// WriterIsAlsoReader plays mysql-monitor_writer_is_also_reader: a server the monitor
	// moves into the writer hostgroup keeps its reader row. nil means true, ProxySQL's
	// default (proxysql.cnf from GenerateConfig sets it false unless tag readonmaster).
	WriterIsAlsoReader *bool
	// MonitorRewritesConfig makes the monitor's moves also rewrite mysql_servers (the
	// in-memory configuration), as older ProxySQL versions did; 2.7.1 moves runtime only.
	MonitorRewritesConfig bool
}

// AdminDouble is the test double of one ProxySQL admin interface.
type AdminDouble struct {
	opt      Options
	addr     ipv6.HostPort
	listener *mysql.Listener
	acceptWG sync.WaitGroup

	mu         sync.Mutex
	mem        map[string]*table // mysql_servers, mysql_users, mysql_replication_hostgroups
	runtime    map[string]*table
	disk       map[string]*table
	readOnly   map[ipv6.HostPort]bool // what the simulated monitor last saw
	busy       map[ipv6.HostPort]bool // backends with connections in use (HoldConnections)
	statements []string
	failNext   map[string]failure
	closed     bool
	conns      map[net.Conn]struct{}
	connWG     sync.WaitGroup
}

var quietVitess sync.Once

// Start listens on a free port and serves until Close.
func Start(opt Options) (*AdminDouble, error) {
	if opt.User == "" {
		opt.User = "admin"
	}
	if opt.Password == "" {
		opt.Password = "admin"
	}
	if opt.Host == "" {
		opt.Host = "127.0.0.1"
	}
	quietVitess.Do(func() {
		discard := func(string, ...any) {}
		vtlog.Warningf, vtlog.Errorf, vtlog.Infof = discard, discard, discard
		discardln := func(...any) {}
		vtlog.Warning, vtlog.Error, vtlog.Info = discardln, discardln, discardln
	})
	d := &AdminDouble{
		opt: opt, mem: emptyTables(), runtime: emptyTables(), disk: emptyTables(),
		readOnly: map[ipv6.HostPort]bool{}, busy: map[ipv6.HostPort]bool{}, failNext: map[string]failure{}, conns: map[net.Conn]struct{}{},
	}
	nl, err := net.Listen("tcp", net.JoinHostPort(opt.Host, "0"))
	if err != nil {
		return nil, fmt.Errorf("proxysqltest: listen: %w", err)
	}
	d.addr = ipv6.HostPort{Host: opt.Host, Port: nl.Addr().(*net.TCPAddr).Port}
	l, err := mysql.NewListenerWithConfig(mysql.ListenerConfig{
		Listener:   &trackingListener{Listener: nl, d: d},
		AuthServer: newAuthServer(opt.User, opt.Password),
		Handler:    &handler{d: d},
	})
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("proxysqltest: listener: %w", err)
	}
	l.ServerVersion = "5.5.30 (ProxySQL Admin Module)"
	d.listener = l
	d.acceptWG.Add(1)
	go func() {
		defer d.acceptWG.Done()
		l.Accept()
	}()
	return d, nil
}

func emptyTables() map[string]*table {
	m := map[string]*table{}
	for name, s := range schemas {
		m[name] = &table{s: s}
	}
	return m
}

// Addr is the admin address to connect to.
func (d *AdminDouble) Addr() ipv6.HostPort { return d.addr }

// Close stops listening, closes client connections and waits for their goroutines.
func (d *AdminDouble) Close() error {
	d.listener.Close()
	d.acceptWG.Wait()
	d.mu.Lock()
	d.closed = true
	conns := make([]net.Conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	for _, c := range conns {
		c.(*trackedConn).Conn.Close()
	}
	d.connWG.Wait()
	return nil
}

// Statements returns every statement received, in order (queries included).
func (d *AdminDouble) Statements() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.statements...)
}

// Writes returns the statements received that are not SELECTs.
func (d *AdminDouble) Writes() []string {
	var out []string
	for _, s := range d.Statements() {
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "SELECT") {
			out = append(out, s)
		}
	}
	return out
}

// ResetStatements forgets the statements received so far.
func (d *AdminDouble) ResetStatements() {
	d.mu.Lock()
	d.statements = nil
	d.mu.Unlock()
}

// failure is an injected error and how many more statements it fails (<0: all).
type failure struct {
	err  error
	left int
}

// FailNext makes the next statement starting with prefix (case-insensitive) fail with err.
func (d *AdminDouble) FailNext(prefix string, err error) { d.FailTimes(prefix, 1, err) }

// FailTimes makes the next n statements starting with prefix (case-insensitive) fail with
// err; n < 0 fails them all until ClearFailures.
func (d *AdminDouble) FailTimes(prefix string, n int, err error) {
	d.mu.Lock()
	d.failNext[strings.ToUpper(prefix)] = failure{err: err, left: n}
	d.mu.Unlock()
}

// ClearFailures forgets the errors injected by FailNext and FailTimes.
func (d *AdminDouble) ClearFailures() {
	d.mu.Lock()
	d.failNext = map[string]failure{}
	d.mu.Unlock()
}

// Exec runs one statement as a client would, without recording it: for seeding tables.
func (d *AdminDouble) Exec(stmt string) error {
	_, err := d.run(stmt, false)
	return err
}

// Dump returns a table's rows as lines of the given columns joined by spaces, sorted by
// the table's key. Tables: mysql_servers, runtime_mysql_servers, disk.mysql_servers and
// the same for mysql_users and mysql_replication_hostgroups. NULL shows as NULL.
func (d *AdminDouble) Dump(tableName string, cols ...string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.lookup(tableName)
	if err != nil {
		panic(err)
	}
	var out []string
	for _, r := range t.sorted() {
		vals := make([]string, len(cols))
		for i, c := range cols {
			v, ok := r[c]
			if !ok {
				panic(fmt.Sprintf("proxysqltest: %s has no column %s", tableName, c))
			}
			if v == nullValue {
				v = "NULL"
			}
			vals[i] = v
		}
		out = append(out, strings.Join(vals, " "))
	}
	return out
}

func (d *AdminDouble) lookup(name string) (*table, error) {
	name = strings.ToLower(name)
	switch {
	case strings.HasPrefix(name, "runtime_"):
		if t, ok := d.runtime[strings.TrimPrefix(name, "runtime_")]; ok {
			return t, nil
		}
	case strings.HasPrefix(name, "disk."):
		if t, ok := d.disk[strings.TrimPrefix(name, "disk.")]; ok {
			return t, nil
		}
	case strings.HasPrefix(name, "main."):
		if t, ok := d.mem[strings.TrimPrefix(name, "main.")]; ok {
			return t, nil
		}
	default:
		if t, ok := d.mem[name]; ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no such table: %s", name)
}

// SimulateReadOnly plays ProxySQL's monitor seeing read_only on host:port (host
// unbracketed) and moving the server between the writer and reader hostgroups of every
// pair in runtime_mysql_replication_hostgroups.
func (d *AdminDouble) SimulateReadOnly(host string, port int, readOnly bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.readOnly[ipv6.HostPort{Host: ipv6.Unbracket(host), Port: port}] = readOnly
	d.applyMonitor()
}

// Bool returns a pointer to b, for Options.WriterIsAlsoReader.
func Bool(b bool) *bool { return &b }

// HoldConnections says whether a backend (host unbracketed) has connections in use: a LOAD
// that removes one of its rows keeps that row in runtime as OFFLINE_HARD while it holds
// them; releasing them (on false) drops those rows, as ProxySQL does once they drain.
func (d *AdminDouble) HoldConnections(host string, port int, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := ipv6.HostPort{Host: ipv6.Unbracket(host), Port: port}
	d.busy[a] = on
	if on {
		return
	}
	rt := d.runtime["mysql_servers"]
	var keep []Row
	for _, r := range rt.rows {
		if r["status"] == "OFFLINE_HARD" && r["hostname"] == a.Host && r["port"] == strconv.Itoa(a.Port) {
			continue
		}
		keep = append(keep, r)
	}
	rt.rows = keep
}

// applyMonitor moves every server whose read_only is known, as ProxySQL 2.7.1's
// read_only check does. Caller holds mu.
func (d *AdminDouble) applyMonitor() {
	rt := d.runtime["mysql_servers"]
	alsoReader := d.opt.WriterIsAlsoReader == nil || *d.opt.WriterIsAlsoReader
	moved := false
	addrs := make([]ipv6.HostPort, 0, len(d.readOnly))
	for a := range d.readOnly {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].String() < addrs[j].String() })
	for _, pair := range d.runtime["mysql_replication_hostgroups"].rows {
		w, r := pair["writer_hostgroup"], pair["reader_hostgroup"]
		for _, a := range addrs {
			ro := d.readOnly[a]
			wr, rr := findLive(rt, w, a), findLive(rt, r, a)
			switch {
			case !ro && wr == nil && rr != nil: // a writable reader becomes a writer
				copyRow(rt, rr, w)
				if !alsoReader {
					removeRow(rt, rr)
				}
				moved = true
			case ro && wr != nil: // a read-only writer goes back to the readers
				if rr == nil {
					copyRow(rt, wr, r)
				}
				removeRow(rt, wr)
				moved = true
			}
		}
	}
	if moved && d.opt.MonitorRewritesConfig {
		cfg := &table{s: rt.s}
		for _, row := range rt.rows {
			if row["status"] != "OFFLINE_HARD" {
				cfg.rows = append(cfg.rows, row.clone())
			}
		}
		d.mem["mysql_servers"] = cfg
	}
}

// findLive returns the runtime row of addr in hostgroup hg unless it is OFFLINE_HARD.
func findLive(t *table, hg string, a ipv6.HostPort) Row {
	for _, r := range t.rows {
		if r["hostgroup_id"] == hg && r["hostname"] == a.Host && r["port"] == strconv.Itoa(a.Port) && r["status"] != "OFFLINE_HARD" {
			return r
		}
	}
	return nil
}

// copyRow puts a copy of src, status included, in hostgroup hg (replacing a row of the
// same key, such as an OFFLINE_HARD leftover).
func copyRow(t *table, src Row, hg string) {
	c := src.clone()
	c["hostgroup_id"] = hg
	for i, r := range t.rows {
		if t.keyOf(r) == t.keyOf(c) {
			t.rows[i] = c
			return
		}
	}
	t.rows = append(t.rows, c)
}

// removeRow drops the row of src's key.
func removeRow(t *table, src Row) {
	k := t.keyOf(src)
	var keep []Row
	for _, r := range t.rows {
		if t.keyOf(r) != k {
			keep = append(keep, r)
		}
	}
	t.rows = keep
}

// run executes one statement. Caller does not hold mu.
func (d *AdminDouble) run(stmt string, record bool) (*sqltypes.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if record {
		d.statements = append(d.statements, stmt)
	}
	up := strings.ToUpper(strings.TrimSpace(stmt))
	for prefix, f := range d.failNext {
		if strings.HasPrefix(up, prefix) {
			if f.left--; f.left == 0 {
				delete(d.failNext, prefix)
			} else {
				d.failNext[prefix] = f
			}
			return nil, mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "%v", f.err)
		}
	}
	res, err := d.execute(stmt)
	if err != nil {
		return nil, mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState, "proxysqltest: %s: %v", stmt, err)
	}
	return res, nil
}

func (d *AdminDouble) execute(stmt string) (*sqltypes.Result, error) {
	toks, err := tokenize(stmt)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	switch {
	case p.accept("SELECT"):
		return d.selectStmt(p)
	case p.accept("INSERT"):
		replace := false
		if p.accept("OR") {
			if err := p.expect("REPLACE"); err != nil {
				return nil, err
			}
			replace = true
		}
		return d.insertStmt(p, replace)
	case p.accept("REPLACE"):
		return d.insertStmt(p, true)
	case p.accept("UPDATE"):
		return d.updateStmt(p)
	case p.accept("DELETE"):
		return d.deleteStmt(p)
	case p.accept("LOAD"):
		return d.loadSave(p, true)
	case p.accept("SAVE"):
		return d.loadSave(p, false)
	}
	return nil, errors.New("unknown statement")
}

func (d *AdminDouble) writable(name string) (*table, error) {
	if strings.HasPrefix(strings.ToLower(name), "runtime_") {
		return nil, fmt.Errorf("table %s is read-only in the double", name)
	}
	return d.lookup(name)
}

func (d *AdminDouble) selectStmt(p *parser) (*sqltypes.Result, error) {
	var cols []string
	if !p.accept("*") {
		for {
			c, err := p.ident()
			if err != nil {
				return nil, err
			}
			cols = append(cols, c)
			if !p.accept(",") {
				break
			}
		}
	}
	if err := p.expect("FROM"); err != nil {
		return nil, err
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	t, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	c, err := p.where()
	if err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, fmt.Errorf("unexpected %q", p.peek().text)
	}
	if cols == nil {
		for _, col := range t.s.cols {
			cols = append(cols, col.name)
		}
	}
	res := &sqltypes.Result{}
	for _, col := range cols {
		if _, ok := t.s.column(col); !ok {
			return nil, fmt.Errorf("no such column: %s", col)
		}
		res.Fields = append(res.Fields, &querypb.Field{Name: col, Type: querypb.Type_VARCHAR, Charset: 33, ColumnLength: 1024})
	}
	for _, r := range t.rows {
		ok, err := c.match(t, r)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		row := make([]sqltypes.Value, len(cols))
		for i, col := range cols {
			if v := r[col]; v == nullValue {
				row[i] = sqltypes.NULL
			} else {
				row[i] = sqltypes.NewVarChar(v)
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

func (d *AdminDouble) insertStmt(p *parser, replace bool) (*sqltypes.Result, error) {
	if err := p.expect("INTO"); err != nil {
		return nil, err
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	t, err := d.writable(name)
	if err != nil {
		return nil, err
	}
	cols, err := p.list(p.ident)
	if err != nil {
		return nil, err
	}
	if err := p.expect("VALUES"); err != nil {
		return nil, err
	}
	var rows []Row
	for {
		vals, err := p.list(p.value)
		if err != nil {
			return nil, err
		}
		if len(vals) != len(cols) {
			return nil, fmt.Errorf("%d values for %d columns", len(vals), len(cols))
		}
		r := Row{}
		for i, c := range cols {
			r[c] = vals[i]
		}
		rows = append(rows, r)
		if !p.accept(",") {
			break
		}
	}
	if !p.done() {
		return nil, fmt.Errorf("unexpected %q", p.peek().text)
	}
	next := t.clone()
	for _, r := range rows {
		if err := next.insert(r, replace); err != nil {
			return nil, err
		}
	}
	*t = *next
	return &sqltypes.Result{RowsAffected: uint64(len(rows))}, nil
}

func (d *AdminDouble) updateStmt(p *parser) (*sqltypes.Result, error) {
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	t, err := d.writable(name)
	if err != nil {
		return nil, err
	}
	if err := p.expect("SET"); err != nil {
		return nil, err
	}
	set := Row{}
	for {
		c, err := p.ident()
		if err != nil {
			return nil, err
		}
		if err := p.expect("="); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		set[c] = v
		if !p.accept(",") {
			break
		}
	}
	c, err := p.where()
	if err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, fmt.Errorf("unexpected %q", p.peek().text)
	}
	next := &table{s: t.s}
	n := 0
	for _, r := range t.rows {
		ok, err := c.match(t, r)
		if err != nil {
			return nil, err
		}
		if ok {
			u := r.clone()
			for k, v := range set {
				u[k] = v
			}
			if r, err = next.normalise(u); err != nil {
				return nil, err
			}
			n++
		}
		if err := next.insert(r, false); err != nil {
			return nil, err
		}
	}
	*t = *next
	return &sqltypes.Result{RowsAffected: uint64(n)}, nil
}

func (d *AdminDouble) deleteStmt(p *parser) (*sqltypes.Result, error) {
	if err := p.expect("FROM"); err != nil {
		return nil, err
	}
	name, err := p.ident()
	if err != nil {
		return nil, err
	}
	t, err := d.writable(name)
	if err != nil {
		return nil, err
	}
	c, err := p.where()
	if err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, fmt.Errorf("unexpected %q", p.peek().text)
	}
	var keep []Row
	n := 0
	for _, r := range t.rows {
		ok, err := c.match(t, r)
		if err != nil {
			return nil, err
		}
		if ok {
			n++
			continue
		}
		keep = append(keep, r)
	}
	t.rows = keep
	return &sqltypes.Result{RowsAffected: uint64(n)}, nil
}

// loadSave runs LOAD MYSQL SERVERS|USERS TO RUNTIME or SAVE MYSQL SERVERS|USERS TO DISK.
// SERVERS covers mysql_servers and mysql_replication_hostgroups, as in ProxySQL.
func (d *AdminDouble) loadSave(p *parser, load bool) (*sqltypes.Result, error) {
	if err := p.expect("MYSQL"); err != nil {
		return nil, err
	}
	var names []string
	switch {
	case p.accept("SERVERS"):
		names = []string{"mysql_servers", "mysql_replication_hostgroups"}
	case p.accept("USERS"):
		names = []string{"mysql_users"}
	default:
		return nil, errors.New("expected SERVERS or USERS")
	}
	dst := d.disk
	if load {
		if err := p.expect("TO", "RUNTIME"); err != nil {
			return nil, err
		}
		dst = d.runtime
	} else if err := p.expect("TO", "DISK"); err != nil {
		return nil, err
	}
	if !p.done() {
		return nil, fmt.Errorf("unexpected %q", p.peek().text)
	}
	for _, n := range names {
		prev := dst[n]
		dst[n] = d.mem[n].clone()
		if load && n == "mysql_servers" {
			dst[n] = d.loadServers(prev, dst[n])
		}
		if load && n == "mysql_users" {
			dst[n] = loadUsers(dst[n])
		}
	}
	if load && names[0] == "mysql_servers" {
		d.applyMonitor()
	}
	return &sqltypes.Result{}, nil
}

// loadServers turns the configuration into runtime_mysql_servers as ProxySQL does:
// statuses upper-cased, OFFLINE_HARD rows dropped, and the rows of busy backends that the
// load removes kept as OFFLINE_HARD leftovers. Caller holds mu.
func (d *AdminDouble) loadServers(prev, next *table) *table {
	out := &table{s: next.s}
	keys := map[string]bool{}
	for _, r := range next.rows {
		r["status"] = strings.ToUpper(r["status"])
		keys[next.keyOf(r)] = true
		if r["status"] == "OFFLINE_HARD" {
			continue
		}
		out.rows = append(out.rows, r)
	}
	for _, r := range prev.rows {
		port, _ := strconv.Atoi(r["port"])
		if !d.busy[ipv6.HostPort{Host: r["hostname"], Port: port}] {
			continue
		}
		if k := prev.keyOf(r); !keys[k] || findLive(out, r["hostgroup_id"], ipv6.HostPort{Host: r["hostname"], Port: port}) == nil {
			gone := r.clone()
			gone["status"] = "OFFLINE_HARD"
			removeRow(out, gone)
			out.rows = append(out.rows, gone)
		}
	}
	return out
}

// loadUsers turns mysql_users into runtime_mysql_users as ProxySQL does: a user that is
// both frontend and backend shows as two rows, one of each.
func loadUsers(next *table) *table {
	out := &table{s: next.s}
	for _, r := range next.rows {
		if r["frontend"] == "1" && r["backend"] == "1" {
			f, b := r.clone(), r.clone()
			f["backend"], b["frontend"] = "0", "0"
			out.rows = append(out.rows, f, b)
			continue
		}
		out.rows = append(out.rows, r)
	}
	return out
}

// handler serves the MySQL protocol.
type handler struct{ d *AdminDouble }

var _ mysql.Handler = (*handler)(nil)

func (h *handler) NewConnection(*mysql.Conn)                   {}
func (h *handler) ConnectionClosed(*mysql.Conn)                {}
func (h *handler) ConnectionAborted(*mysql.Conn, string) error { return nil }
func (h *handler) ComInitDB(*mysql.Conn, string) error         { return nil }
func (h *handler) WarningCount(*mysql.Conn) uint16             { return 0 }
func (h *handler) ComResetConnection(*mysql.Conn) error        { return nil }
func (h *handler) ParserOptionsForConnection(*mysql.Conn) (sqlparser.ParserOptions, error) {
	return sqlparser.ParserOptions{}, nil
}

// ComPrepare refuses, as ProxySQL's admin does.
func (h *handler) ComPrepare(_ context.Context, _ *mysql.Conn, query string, _ *mysql.PrepareData) ([]*querypb.Field, error) {
	h.d.mu.Lock()
	h.d.statements = append(h.d.statements, "PREPARE "+query)
	h.d.mu.Unlock()
	return nil, mysql.NewSQLError(mysql.ERAccessDeniedError, mysql.SSUnknownSQLState, "Command not supported")
}

func (h *handler) ComStmtExecute(context.Context, *mysql.Conn, *mysql.PrepareData, func(*sqltypes.Result) error) error {
	return mysql.NewSQLError(mysql.ERAccessDeniedError, mysql.SSUnknownSQLState, "Command not supported")
}

// ComMultiQuery refuses statements after the first: the admin interface runs one at a time.
func (h *handler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	return "", h.ComQuery(ctx, c, query, callback)
}

func (h *handler) ComQuery(_ context.Context, _ *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	res, err := h.d.run(query, true)
	if err != nil {
		return err
	}
	return callback(res, false)
}

// trackingListener records accepted connections so that Close can end them.
type trackingListener struct {
	net.Listener
	d *AdminDouble
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		d := l.d
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, d: d}
		d.conns[tc] = struct{}{}
		d.connWG.Add(1)
		d.mu.Unlock()
		return tc, nil
	}
}

type trackedConn struct {
	net.Conn
	d    *AdminDouble
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
		c.d.connWG.Done()
	})
	return err
}

// authServer accepts one user with mysql_native_password.
type authServer struct {
	user    string
	hash2   []byte
	methods []mysql.AuthMethod
}

func newAuthServer(user, password string) *authServer {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	a := &authServer{user: user, hash2: h2[:]}
	a.methods = []mysql.AuthMethod{mysql.NewMysqlNativeAuthMethod(a, a)}
	return a
}

func (a *authServer) AuthMethods() []mysql.AuthMethod { return a.methods }

func (a *authServer) DefaultAuthMethodDescription() mysql.AuthMethodDescription {
	return mysql.MysqlNativePassword
}

func (a *authServer) HandleUser(string, net.Addr) bool { return true }

func (a *authServer) UserEntryWithHash(_ []*x509.Certificate, salt []byte, user string, authResponse []byte, _ net.Addr) (mysql.Getter, error) {
	if user != a.user || !mysql.VerifyHashedMysqlNativePassword(authResponse, salt, a.hash2) {
		return nil, mysql.NewSQLError(mysql.ERAccessDeniedError, mysql.SSAccessDeniedError, "ProxySQL Error: Access denied for user '%s'", user)
	}
	return userData{user}, nil
}

type userData struct{ user string }

func (u userData) Get() *querypb.VTGateCallerID { return &querypb.VTGateCallerID{Username: u.user} }
