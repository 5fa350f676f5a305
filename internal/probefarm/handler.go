package probefarm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/dolthub/vitess/go/vt/sqlparser"
)

// ErrUnknownStatement is the MariaDB error number of the farm's answer to a statement it
// does not recognise (ER_NOT_SUPPORTED_YET), with the statement in the message.
const ErrUnknownStatement = mysql.ERNotSupportedYet

// GTIDSeq is the sequence number of every cluster's GTID position: "0-<master id>-1000".
const GTIDSeq = 1000

// handler answers one endpoint's statements.
type handler struct{ ep *Endpoint }

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

func (h *handler) ComPrepare(_ context.Context, _ *mysql.Conn, query string, _ *mysql.PrepareData) ([]*querypb.Field, error) {
	h.ep.farm.count("PREPARE " + query)
	return nil, unknown("PREPARE " + query)
}

func (h *handler) ComStmtExecute(_ context.Context, _ *mysql.Conn, _ *mysql.PrepareData, _ func(*sqltypes.Result) error) error {
	return unknown("EXECUTE")
}

func (h *handler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	return "", h.ComQuery(ctx, c, query, callback)
}

func (h *handler) ComQuery(_ context.Context, _ *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	res, err := h.ep.answer(query)
	if err != nil {
		return err
	}
	return callback(res, false)
}

func unknown(stmt string) error {
	return mysql.NewSQLError(ErrUnknownStatement, mysql.SSUnknownSQLState, "probefarm: unknown statement %q", stmt)
}

// Normalize upper-cases a statement, collapses its whitespace and drops a final ';': the
// form the farm matches prefixes against.
func Normalize(q string) string {
	q = strings.TrimSpace(q)
	q = strings.TrimSuffix(q, ";")
	return strings.ToUpper(strings.Join(strings.Fields(q), " "))
}

var okResult = &sqltypes.Result{}

// answer returns the result of one statement.
func (e *Endpoint) answer(query string) (*sqltypes.Result, error) {
	n := Normalize(query)
	var (
		res *sqltypes.Result
		err error
		unk string
	)
	switch {
	case n == "SHOW ALL SLAVES STATUS" || n == "SHOW ALL REPLICAS STATUS":
		res = e.slavesStatus()
	case n == "SHOW SLAVE HOSTS" || n == "SHOW REPLICA HOSTS":
		res = e.slaveHosts()
	case strings.HasPrefix(n, "SHOW GLOBAL STATUS LIKE "):
		res = e.globalStatus(n)
	case strings.HasPrefix(n, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.PROCESSLIST WHERE COMMAND LIKE 'BINLOG DUMP"):
		res = oneValue("COUNT(*)", querypb.Type_INT64, sqltypes.NewInt64(int64(len(e.Replicas))))
	case strings.HasPrefix(n, "SET GLOBAL READ_ONLY"):
		res, err = e.setReadOnly(n)
	case strings.HasPrefix(n, "SET "):
		res = okResult // session variables, sql_mode from the connection's init, ...
	case n == "SELECT 1":
		res = oneValue("1", querypb.Type_INT64, sqltypes.NewInt64(1))
	case strings.HasPrefix(n, "SELECT @@"):
		list := strings.TrimSuffix(strings.TrimSpace(query), ";")
		res, unk, err = e.selectVariables(strings.TrimSpace(list[len("SELECT"):]))
	default:
		unk = query
	}
	if unk != "" {
		err = unknown(unk)
	}
	e.farm.count(unk)
	return res, err
}

func oneValue(name string, typ querypb.Type, v sqltypes.Value) *sqltypes.Result {
	return &sqltypes.Result{Fields: []*querypb.Field{field(name, typ)}, Rows: [][]sqltypes.Value{{v}}}
}

func field(name string, typ querypb.Type) *querypb.Field {
	f := &querypb.Field{Name: name, Type: typ, Charset: 63, ColumnLength: 21}
	if typ == querypb.Type_VARCHAR {
		f.Charset, f.ColumnLength = 33, 1024
	}
	return f
}

func (e *Endpoint) gtidPos() string {
	id := e.ServerID
	if e.Master != nil {
		id = e.Master.ServerID
	}
	return fmt.Sprintf("0-%d-%d", id, GTIDSeq)
}

// variable returns @@name as MariaDB 10.11 would, and its column type.
func (e *Endpoint) variable(name string) (sqltypes.Value, querypb.Type, bool) {
	str := func(s string) (sqltypes.Value, querypb.Type, bool) {
		return sqltypes.NewVarChar(s), querypb.Type_VARCHAR, true
	}
	num := func(n int64) (sqltypes.Value, querypb.Type, bool) {
		return sqltypes.NewInt64(n), querypb.Type_INT64, true
	}
	b := func(on bool) (sqltypes.Value, querypb.Type, bool) {
		if on {
			return num(1)
		}
		return num(0)
	}
	switch name {
	case "version":
		return str(e.farm.opt.Version)
	case "version_comment":
		return str("Debian 12")
	case "server_id":
		return sqltypes.NewUint64(uint64(e.ServerID)), querypb.Type_UINT64, true
	case "port":
		return num(int64(e.Addr.Port))
	case "hostname":
		return str("probefarm")
	case "gtid_domain_id":
		return num(0)
	case "read_only":
		return b(e.ReadOnly())
	case "log_bin", "log_slave_updates", "gtid_strict_mode":
		return b(true)
	case "binlog_format":
		return str("ROW")
	case "gtid_current_pos", "gtid_binlog_pos":
		return str(e.gtidPos())
	case "gtid_slave_pos":
		if e.IsMaster() {
			return str("")
		}
		return str(e.gtidPos())
	case "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled":
		return b(false)
	case "max_allowed_packet":
		return num(16 << 20)
	case "sql_mode":
		return str("STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION")
	}
	return sqltypes.Value{}, 0, false
}

// selectVariables answers "SELECT @@a, @@b, 0, ..." (the probe's one-row SELECT) item by
// item, so that reordering the probe's columns needs no change here. An unknown variable is
// MariaDB's error 1193; an item that is neither a variable nor an integer is an unknown
// statement.
func (e *Endpoint) selectVariables(list string) (*sqltypes.Result, string, error) {
	res := &sqltypes.Result{Rows: [][]sqltypes.Value{nil}}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if strings.HasPrefix(item, "@@") {
			name := strings.ToLower(item[2:])
			name = strings.TrimPrefix(strings.TrimPrefix(name, "global."), "session.")
			v, typ, ok := e.variable(name)
			if !ok {
				return nil, "", mysql.NewSQLError(mysql.ERUnknownSystemVariable, mysql.SSUnknownSQLState, "Unknown system variable '%s'", name)
			}
			res.Fields = append(res.Fields, field(item, typ))
			res.Rows[0] = append(res.Rows[0], v)
			continue
		}
		v, err := sqltypes.NewIntegral(item)
		if err != nil {
			return nil, "SELECT " + list, nil
		}
		res.Fields = append(res.Fields, field(item, querypb.Type_INT64))
		res.Rows[0] = append(res.Rows[0], v)
	}
	return res, "", nil
}

func (e *Endpoint) setReadOnly(n string) (*sqltypes.Result, error) {
	v := strings.TrimSpace(strings.TrimPrefix(n, "SET GLOBAL READ_ONLY"))
	v = strings.TrimSpace(strings.TrimPrefix(v, "="))
	var on bool
	switch v {
	case "ON", "1", "TRUE":
		on = true
	case "OFF", "0", "FALSE":
	default:
		return nil, mysql.NewSQLError(mysql.ERWrongValueForVar, mysql.SSUnknownSQLState, "Variable 'read_only' can't be set to the value of '%s'", v)
	}
	e.mu.Lock()
	e.readOnly = on
	e.mu.Unlock()
	return okResult, nil
}

// slaveHostsFields are the columns of SHOW SLAVE HOSTS on MariaDB 10.11.
var slaveHostsFields = []*querypb.Field{
	field("Server_id", querypb.Type_UINT32), field("Host", querypb.Type_VARCHAR),
	field("Port", querypb.Type_UINT32), field("Master_id", querypb.Type_UINT32),
}

func (e *Endpoint) slaveHosts() *sqltypes.Result {
	res := &sqltypes.Result{Fields: slaveHostsFields}
	for _, r := range e.Replicas {
		res.Rows = append(res.Rows, []sqltypes.Value{
			sqltypes.NewUint32(r.ServerID), sqltypes.NewVarChar(r.Addr.Host),
			sqltypes.NewUint32(uint32(r.Addr.Port)), sqltypes.NewUint32(e.ServerID),
		})
	}
	return res
}

var statusFields = []*querypb.Field{field("Variable_name", querypb.Type_VARCHAR), field("Value", querypb.Type_VARCHAR)}

// globalStatus answers SHOW GLOBAL STATUS LIKE for the semi-sync status variables (OFF);
// any other pattern gets an empty result, as a variable MariaDB does not have would.
func (e *Endpoint) globalStatus(n string) *sqltypes.Result {
	res := &sqltypes.Result{Fields: statusFields}
	if strings.Contains(strings.ReplaceAll(n, `\`, ""), "RPL_SEMI_SYNC") {
		res.Rows = [][]sqltypes.Value{
			{sqltypes.NewVarChar("Rpl_semi_sync_master_status"), sqltypes.NewVarChar("OFF")},
			{sqltypes.NewVarChar("Rpl_semi_sync_slave_status"), sqltypes.NewVarChar("OFF")},
		}
	}
	return res
}

// slaveColumn is one column of SHOW ALL SLAVES STATUS: its name, type and value for a replica.
type slaveColumn struct {
	name  string
	typ   querypb.Type
	value func(e *Endpoint) sqltypes.Value
}

func vs(s string) func(*Endpoint) sqltypes.Value {
	return func(*Endpoint) sqltypes.Value { return sqltypes.NewVarChar(s) }
}

func vu(n uint64) func(*Endpoint) sqltypes.Value {
	return func(*Endpoint) sqltypes.Value { return sqltypes.NewUint64(n) }
}

const (
	sqlState     = "Slave has read all relay log; waiting for more updates"
	ioState      = "Waiting for master to send event"
	binlogFile   = "mariadb-bin.000001"
	binlogPos    = 123456
	heartbeatSec = 1
)

// slaveColumns lists SHOW ALL SLAVES STATUS's columns in MariaDB 10.11's order.
var slaveColumns = []slaveColumn{
	{"Connection_name", querypb.Type_VARCHAR, vs("")},
	{"Slave_SQL_State", querypb.Type_VARCHAR, vs(sqlState)},
	{"Slave_IO_State", querypb.Type_VARCHAR, vs(ioState)},
	{"Master_Host", querypb.Type_VARCHAR, func(e *Endpoint) sqltypes.Value { return sqltypes.NewVarChar(e.Master.Addr.Host) }},
	{"Master_User", querypb.Type_VARCHAR, vs("repl")},
	{"Master_Port", querypb.Type_UINT32, func(e *Endpoint) sqltypes.Value { return sqltypes.NewUint32(uint32(e.Master.Addr.Port)) }},
	{"Connect_Retry", querypb.Type_UINT32, vu(1)},
	{"Master_Log_File", querypb.Type_VARCHAR, vs(binlogFile)},
	{"Read_Master_Log_Pos", querypb.Type_UINT64, vu(binlogPos)},
	{"Relay_Log_File", querypb.Type_VARCHAR, vs("relay-bin.000002")},
	{"Relay_Log_Pos", querypb.Type_UINT64, vu(631)},
	{"Relay_Master_Log_File", querypb.Type_VARCHAR, vs(binlogFile)},
	{"Slave_IO_Running", querypb.Type_VARCHAR, vs("Yes")},
	{"Slave_SQL_Running", querypb.Type_VARCHAR, vs("Yes")},
	{"Replicate_Do_DB", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Ignore_DB", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Do_Table", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Ignore_Table", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Wild_Do_Table", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Wild_Ignore_Table", querypb.Type_VARCHAR, vs("")},
	{"Last_Errno", querypb.Type_UINT32, vu(0)},
	{"Last_Error", querypb.Type_VARCHAR, vs("")},
	{"Skip_Counter", querypb.Type_UINT32, vu(0)},
	{"Exec_Master_Log_Pos", querypb.Type_UINT64, vu(binlogPos)},
	{"Relay_Log_Space", querypb.Type_UINT64, vu(934)},
	{"Until_Condition", querypb.Type_VARCHAR, vs("None")},
	{"Until_Log_File", querypb.Type_VARCHAR, vs("")},
	{"Until_Log_Pos", querypb.Type_UINT64, vu(0)},
	{"Master_SSL_Allowed", querypb.Type_VARCHAR, vs("No")},
	{"Master_SSL_CA_File", querypb.Type_VARCHAR, vs("")},
	{"Master_SSL_CA_Path", querypb.Type_VARCHAR, vs("")},
	{"Master_SSL_Cert", querypb.Type_VARCHAR, vs("")},
	{"Master_SSL_Cipher", querypb.Type_VARCHAR, vs("")},
	{"Master_SSL_Key", querypb.Type_VARCHAR, vs("")},
	{"Seconds_Behind_Master", querypb.Type_UINT64, vu(0)},
	{"Master_SSL_Verify_Server_Cert", querypb.Type_VARCHAR, vs("No")},
	{"Last_IO_Errno", querypb.Type_UINT32, vu(0)},
	{"Last_IO_Error", querypb.Type_VARCHAR, vs("")},
	{"Last_SQL_Errno", querypb.Type_UINT32, vu(0)},
	{"Last_SQL_Error", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Ignore_Server_Ids", querypb.Type_VARCHAR, vs("")},
	{"Master_Server_Id", querypb.Type_UINT32, func(e *Endpoint) sqltypes.Value { return sqltypes.NewUint32(e.Master.ServerID) }},
	{"Master_SSL_Crl", querypb.Type_VARCHAR, vs("")},
	{"Master_SSL_Crlpath", querypb.Type_VARCHAR, vs("")},
	{"Using_Gtid", querypb.Type_VARCHAR, vs("Slave_Pos")},
	{"Gtid_IO_Pos", querypb.Type_VARCHAR, func(e *Endpoint) sqltypes.Value { return sqltypes.NewVarChar(e.gtidPos()) }},
	{"Replicate_Do_Domain_Ids", querypb.Type_VARCHAR, vs("")},
	{"Replicate_Ignore_Domain_Ids", querypb.Type_VARCHAR, vs("")},
	{"Parallel_Mode", querypb.Type_VARCHAR, vs("optimistic")},
	{"SQL_Delay", querypb.Type_UINT32, vu(0)},
	{"SQL_Remaining_Delay", querypb.Type_UINT32, func(*Endpoint) sqltypes.Value { return sqltypes.NULL }},
	{"Slave_SQL_Running_State", querypb.Type_VARCHAR, vs(sqlState)},
	{"Slave_DDL_Groups", querypb.Type_UINT64, vu(0)},
	{"Slave_Non_Transactional_Groups", querypb.Type_UINT64, vu(0)},
	{"Slave_Transactional_Groups", querypb.Type_UINT64, vu(GTIDSeq)},
	{"Replicate_Rewrite_DB", querypb.Type_VARCHAR, vs("")},
	{"Retried_transactions", querypb.Type_UINT32, vu(0)},
	{"Max_relay_log_size", querypb.Type_UINT64, vu(1 << 30)},
	{"Executed_log_entries", querypb.Type_UINT32, vu(7)},
	{"Slave_received_heartbeats", querypb.Type_UINT32, func(e *Endpoint) sqltypes.Value {
		return sqltypes.NewUint64(uint64(time.Since(e.farm.started) / (heartbeatSec * time.Second)))
	}},
	{"Slave_heartbeat_period", querypb.Type_FLOAT64, func(*Endpoint) sqltypes.Value { return sqltypes.NewFloat64(heartbeatSec) }},
	{"Gtid_Slave_Pos", querypb.Type_VARCHAR, func(e *Endpoint) sqltypes.Value { return sqltypes.NewVarChar(e.gtidPos()) }},
}

var slaveFields = func() []*querypb.Field {
	out := make([]*querypb.Field, len(slaveColumns))
	for i, c := range slaveColumns {
		out[i] = field(c.name, c.typ)
	}
	return out
}()

// SlaveStatusColumns returns the column names of the farm's SHOW ALL SLAVES STATUS.
func SlaveStatusColumns() []string {
	out := make([]string, len(slaveColumns))
	for i, c := range slaveColumns {
		out[i] = c.name
	}
	return out
}

func (e *Endpoint) slavesStatus() *sqltypes.Result {
	res := &sqltypes.Result{Fields: slaveFields}
	if e.IsMaster() {
		return res
	}
	row := make([]sqltypes.Value, len(slaveColumns))
	for i, c := range slaveColumns {
		row[i] = c.value(e)
	}
	res.Rows = [][]sqltypes.Value{row}
	return res
}
