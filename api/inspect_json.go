package api

import (
	"context"
	"strconv"

	"replication-manager-pro/mariadb"
)

// JSON shapes of the inspection routes, with the field names of replication-manager's
// (utils/dbhelper). Where the original encoded sql.Null* structs ({"String":..,"Valid":..}),
// plain values are sent: a string, a number, or null for SQL NULL.

// Process is one processlist row. Info is redacted (mariadb.RedactSQL).
type Process struct {
	ID       uint64  `json:"id"`
	User     string  `json:"user"`
	Host     string  `json:"host"`
	DB       string  `json:"db"`
	Command  string  `json:"command"`
	Time     float64 `json:"time"`   // seconds
	TimeMs   float64 `json:"timeMs"` // the same, in milliseconds
	State    string  `json:"state"`
	Info     string  `json:"info"`
	Progress float64 `json:"progress"` // percent done, for the statements that report it
}

func readProcesslist(ctx context.Context, sr ServerReader) (any, error) {
	threads, err := sr.Processlist(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Process, 0, len(threads))
	for _, t := range threads {
		out = append(out, Process{ID: t.ID, User: t.User, Host: t.Host, DB: t.DB, Command: t.Command,
			Time: t.Time.Seconds(), TimeMs: float64(t.Time.Microseconds()) / 1000, State: t.State,
			Info: mariadb.RedactSQL(t.Info), Progress: t.Progress})
	}
	return out, nil
}

// VariableValue is one global variable or status counter.
type VariableValue struct {
	Name  string `json:"variableName"`
	Value string `json:"value"`
}

// variablesJSON shapes SHOW GLOBAL VARIABLES / STATUS, secrets redacted
// (mariadb.RedactVariable): status counters hold none, but one rule for both costs nothing.
func variablesJSON(vars []mariadb.Variable, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	out := make([]VariableValue, 0, len(vars))
	for _, v := range vars {
		out = append(out, VariableValue{Name: v.Name, Value: mariadb.RedactVariable(v.Name, v.Value)})
	}
	return out, nil
}

// MasterStatusJSON is SHOW MASTER STATUS. Unlike the unprotected legacy
// /clusters/{c}/servers/{host}/master-status (an HAProxy check answering 200 only on the
// master), this route answers every server's binlog coordinates, as the original's
// protected route does. gtidBinlogPos and logBin are extensions.
type MasterStatusJSON struct {
	File            string `json:"file"`
	Position        uint64 `json:"position"`
	BinlogDoDB      string `json:"binlogDoDB"`
	BinlogIgnoreDB  string `json:"binlogIgnoreDB"`
	ExecutedGtidSet string `json:"executedGtidSet"` // MySQL's; always empty on MariaDB
	GTIDBinlogPos   string `json:"gtidBinlogPos"`
	LogBin          bool   `json:"logBin"`
}

func readMasterStatus(ctx context.Context, sr ServerReader) (any, error) {
	ms, err := sr.MasterStatus(ctx)
	if err != nil {
		return nil, err
	}
	return MasterStatusJSON{File: ms.File, Position: ms.Position, BinlogDoDB: ms.BinlogDoDB,
		BinlogIgnoreDB: ms.BinlogIgnoreDB, GTIDBinlogPos: ms.GTIDBinlogPos, LogBin: ms.LogBin}, nil
}

// SlaveStatus is one row of SHOW ALL SLAVES STATUS: the fields of the server object's
// replications, plus the original's other columns.
type SlaveStatus struct {
	Replication
	MasterUser               string  `json:"masterUser"`
	MasterLogFile            string  `json:"masterLogFile"`
	ReadMasterLogPos         uint64  `json:"readMasterLogPos"`
	RelayMasterLogFile       string  `json:"relayMasterLogFile"`
	ExecMasterLogPos         uint64  `json:"execMasterLogPos"`
	GTIDSlavePos             string  `json:"gtidSlavePos"`
	SlaveHeartbeatPeriod     float64 `json:"slaveHeartbeatPeriod"` // seconds
	SlaveSQLRunningState     string  `json:"slaveSQLRunningState"`
	SlaveIOState             string  `json:"slaveIoState"`
	SQLRemainingDelay        *int64  `json:"sqlRemainingDelay"`
	ReplicateDoDomainIDs     string  `json:"replicateDoDomainIds"`
	ReplicateIgnoreDomainIDs string  `json:"replicateIgnoreDomainIds"`
	ReplicateIgnoreServerIDs string  `json:"replicateIgnoreServerIds"`
	ReplicateDoDB            string  `json:"replicateDoDb"`
	ReplicateIgnoreDB        string  `json:"replicateIgnoreDb"`
	ReplicateDoTable         string  `json:"replicateDoTable"`
	ReplicateIgnoreTable     string  `json:"replicateIgnoreTable"`
	ReplicateWildDoTable     string  `json:"replicateWildDoTable"`
	ReplicateWildIgnoreTable string  `json:"replicateWildIgnoreTable"`
	ReceivedHeartbeats       uint64  `json:"slaveReceivedHeartbeats"`
}

func readAllSlavesStatus(ctx context.Context, sr ServerReader) (any, error) {
	rows, err := sr.AllSlavesStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SlaveStatus, 0, len(rows))
	for _, r := range rows {
		out = append(out, SlaveStatus{
			Replication: Replication{ConnectionName: r.ConnectionName, MasterHost: r.MasterHost, MasterPort: strconv.Itoa(r.MasterPort),
				MasterServerID: r.MasterServerID, SlaveIORunning: string(r.SlaveIORunning), SlaveSQLRunning: string(r.SlaveSQLRunning),
				SecondsBehindMaster: r.SecondsBehindMaster, LastIOErrno: r.LastIOErrno, LastIOError: r.LastIOError,
				LastSQLErrno: r.LastSQLErrno, LastSQLError: r.LastSQLError, UsingGTID: r.UsingGtid,
				GTIDIOPos: r.GtidIOPos.String(), SQLDelay: r.SQLDelay},
			MasterUser: r.MasterUser, MasterLogFile: r.MasterLogFile, ReadMasterLogPos: r.ReadMasterLogPos,
			RelayMasterLogFile: r.RelayMasterLogFile, ExecMasterLogPos: r.ExecMasterLogPos, GTIDSlavePos: r.GtidSlavePos.String(),
			SlaveHeartbeatPeriod: r.SlaveHeartbeatPeriod.Seconds(), SlaveSQLRunningState: r.SlaveSQLState, SlaveIOState: r.SlaveIOState,
			SQLRemainingDelay: r.SQLRemainingDelay, ReplicateDoDomainIDs: r.ReplicateDoDomainIDs, ReplicateIgnoreDomainIDs: r.ReplicateIgnoreDomainIDs,
			ReplicateIgnoreServerIDs: r.ReplicateIgnoreServerIDs, ReplicateDoDB: r.ReplicateDoDB, ReplicateIgnoreDB: r.ReplicateIgnoreDB,
			ReplicateDoTable: r.ReplicateDoTable, ReplicateIgnoreTable: r.ReplicateIgnoreTable, ReplicateWildDoTable: r.ReplicateWildDoTable,
			ReplicateWildIgnoreTable: r.ReplicateWildIgnoreTable, ReceivedHeartbeats: r.SlaveReceivedHeartbeats,
		})
	}
	return out, nil
}

// SchemaJSON is one database with its size. The original answered bare names; the sizes
// are what an operator opens this view for.
type SchemaJSON struct {
	Name        string `json:"name"`
	Tables      int64  `json:"tables"`
	DataLength  int64  `json:"dataLength"`
	IndexLength int64  `json:"indexLength"`
	Size        int64  `json:"size"` // dataLength + indexLength, bytes
}

func readSchemas(ctx context.Context, sr ServerReader) (any, error) {
	l, err := sr.Schemas(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SchemaJSON, 0, len(l))
	for _, sc := range l {
		out = append(out, SchemaJSON{Name: sc.Name, Tables: sc.Tables, DataLength: sc.DataLength,
			IndexLength: sc.IndexLength, Size: sc.DataLength + sc.IndexLength})
	}
	return out, nil
}

// TableJSON is one table, with the original's (snake_case) names.
type TableJSON struct {
	Schema      string `json:"table_schema"`
	Name        string `json:"table_name"`
	Engine      string `json:"engine"`
	Rows        int64  `json:"table_rows"`
	DataLength  int64  `json:"data_length"`
	IndexLength int64  `json:"index_length"`
}

func readTables(ctx context.Context, sr ServerReader) (any, error) {
	l, err := sr.Tables(ctx, maxTables)
	if err != nil {
		return nil, err
	}
	out := make([]TableJSON, 0, len(l))
	for _, t := range l {
		out = append(out, TableJSON{Schema: t.Schema, Name: t.Name, Engine: t.Engine, Rows: t.Rows,
			DataLength: t.DataLength, IndexLength: t.IndexLength})
	}
	return out, nil
}
