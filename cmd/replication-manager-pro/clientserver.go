package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"replication-manager-pro/api"
	"replication-manager-pro/errlog"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/slowlog"
)

// serverViews maps each view of "client server" to its route under /servers/{s} and its
// printer (the API's JSON shape decoded, printed as a table).
var serverViews = map[string]struct {
	route string
	print func(w io.Writer, b []byte) error
}{
	"detail":        {"", printServerDetail},
	"processlist":   {"/processlist", printProcesslist},
	"variables":     {"/variables", printVariables},
	"status":        {"/status", printVariables},
	"master-status": {"/master-status", printMasterStatus},
	"slaves":        {"/all-slaves-status", printSlaves},
	"schemas":       {"/schemas", printSchemas},
	"tables":        {"/tables", printTables},
	"slow":          {"/slow-queries", printSlowQueries},
	"digests":       {"/digest-statements-slow", printSlowDigests},
	"errorlog":      {"/errorlog", printErrorLog},
}

// newClientServerCmd builds "client server <id|host:port> [view]": the API's read-only
// server inspection routes (docs/api.md).
func newClientServerCmd(f *clientFlags) *cobra.Command {
	var like string
	cmd := &cobra.Command{
		Use:   "server <id|host:port> [detail|processlist|variables|status|master-status|slaves|schemas|tables|slow|digests|errorlog]",
		Short: "Inspect one server of the cluster: its detail (default), processlist, variables, status, binlog, replication, schemas, tables, slow queries and their digests, error log",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			view := "detail"
			if len(args) == 2 {
				view = args[1]
			}
			v, ok := serverViews[view]
			if !ok {
				return fail(cmd, fmt.Errorf("unknown view %q (detail, processlist, variables, status, master-status, slaves, schemas, tables, slow, digests, errorlog)", view))
			}
			var raw json.RawMessage
			if err := clientGetJSON(cmd, f, "/servers/"+url.PathEscape(args[0])+v.route, &raw); err != nil {
				return fail(cmd, err)
			}
			if like != "" {
				if raw, ok = filterVariables(raw, like); !ok {
					return fail(cmd, fmt.Errorf("--like applies to variables and status only"))
				}
			}
			out := cmd.OutOrStdout()
			if f.json {
				_, err := fmt.Fprintf(out, "%s\n", raw)
				return err
			}
			if err := v.print(out, raw); err != nil {
				return fail(cmd, fmt.Errorf("%s: %w", view, err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&like, "like", "", "variables and status: only the names containing this (case-insensitive)")
	return cmd
}

func filterVariables(b []byte, like string) (json.RawMessage, bool) {
	var l []api.VariableValue
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, false
	}
	out := []api.VariableValue{}
	for _, v := range l {
		if strings.Contains(strings.ToLower(v.Name), strings.ToLower(like)) {
			out = append(out, v)
		}
	}
	nb, err := json.Marshal(out)
	return nb, err == nil
}

// table decodes b into v and prints a header then one line per row with tabwriter.
func table[T any](w io.Writer, b []byte, header string, line func(T) []any) error {
	var rows []T
	if err := json.Unmarshal(b, &rows); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		cols := line(r)
		for i, c := range cols {
			sep := "\t"
			if i == len(cols)-1 {
				sep = "\n"
			}
			fmt.Fprint(tw, c, sep)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printServerDetail(w io.Writer, b []byte) error {
	var s api.DBServer
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range [][2]string{{"id", s.ID}, {"server", s.URL}, {"state", s.State}, {"role", s.Role},
		{"version", s.DBVersion}, {"server_id", strconv.FormatUint(uint64(s.ServerID), 10)}, {"read_only", s.ReadOnly},
		{"gtid_current_pos", s.CurrentGTID}, {"gtid_binlog_pos", s.GTIDBinlogPos}, {"gtid_slave_pos", s.SlaveGTID},
		{"maintenance", strconv.FormatBool(s.IsMaintenance)}, {"probe_error", s.ProbeError}} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], dash(kv[1]))
	}
	for _, r := range s.Replications {
		fmt.Fprintf(tw, "replication %q\tfrom %s IO/SQL %s/%s\n", r.ConnectionName,
			net.JoinHostPort(ipv6.Unbracket(r.MasterHost), r.MasterPort), r.SlaveIORunning, r.SlaveSQLRunning)
	}
	return tw.Flush()
}

func printProcesslist(w io.Writer, b []byte) error {
	return table(w, b, "ID\tUSER\tHOST\tDB\tCOMMAND\tTIME\tSTATE\tINFO", func(p api.Process) []any {
		info := strings.Join(strings.Fields(p.Info), " ")
		if len(info) > 100 {
			info = info[:100] + "..."
		}
		return []any{p.ID, p.User, p.Host, dash(p.DB), p.Command, strconv.FormatFloat(p.Time, 'f', 1, 64), dash(p.State), dash(info)}
	})
}

func printVariables(w io.Writer, b []byte) error {
	return table(w, b, "NAME\tVALUE", func(v api.VariableValue) []any { return []any{v.Name, v.Value} })
}

func printMasterStatus(w io.Writer, b []byte) error {
	var m api.MasterStatusJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if !m.LogBin {
		_, err := fmt.Fprintln(w, "binary log off")
		return err
	}
	_, err := fmt.Fprintf(w, "file %s position %d gtid_binlog_pos %s\n", m.File, m.Position, dash(m.GTIDBinlogPos))
	return err
}

func printSlaves(w io.Writer, b []byte) error {
	return table(w, b, "CONNECTION\tSOURCE\tIO/SQL\tLAG\tGTID_IO_POS\tERROR", func(r api.SlaveStatus) []any {
		lag := "null"
		if r.SecondsBehindMaster != nil {
			lag = strconv.FormatInt(*r.SecondsBehindMaster, 10) + "s"
		}
		return []any{strconv.Quote(r.ConnectionName), net.JoinHostPort(ipv6.Unbracket(r.MasterHost), r.MasterPort),
			r.SlaveIORunning + "/" + r.SlaveSQLRunning, lag, dash(r.GTIDIOPos), dash(r.LastIOError + r.LastSQLError)}
	})
}

func printSchemas(w io.Writer, b []byte) error {
	return table(w, b, "DATABASE\tTABLES\tDATA\tINDEX\tSIZE", func(s api.SchemaJSON) []any {
		return []any{s.Name, s.Tables, s.DataLength, s.IndexLength, s.Size}
	})
}

func printTables(w io.Writer, b []byte) error {
	return table(w, b, "DATABASE\tTABLE\tENGINE\tROWS\tDATA\tINDEX", func(t api.TableJSON) []any {
		return []any{t.Schema, t.Name, dash(t.Engine), t.Rows, t.DataLength, t.IndexLength}
	})
}

func printSlowQueries(w io.Writer, b []byte) error {
	return table(w, b, "TIME\tUSER\tDB\tSECONDS\tROWS_EXAMINED\tSQL", func(e slowlog.Entry) []any {
		return []any{e.Time.Format("2006-01-02T15:04:05Z"), dash(e.User), dash(e.DB), fmt.Sprintf("%.3f", e.QueryTime), e.RowsExamined, oneLine(e.SQL, 100)}
	})
}

func printSlowDigests(w io.Writer, b []byte) error {
	return table(w, b, "DIGEST\tCOUNT\tTOTAL_S\tMAX_S\tROWS_EXAMINED\tDB\tSHAPE", func(d slowlog.Digest) []any {
		return []any{d.ID, d.Count, fmt.Sprintf("%.3f", d.TotalTime), fmt.Sprintf("%.3f", d.MaxTime), d.RowsExamined, dash(d.DB), oneLine(d.Text, 100)}
	})
}

// oneLine folds a statement onto one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

func printErrorLog(w io.Writer, b []byte) error {
	return table(w, b, "TIME\tLEVEL\tTEXT", func(e errlog.Entry) []any {
		return []any{e.Time, e.Level, oneLine(e.Text, 140)}
	})
}
