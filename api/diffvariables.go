package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// The variables whose values differ between the cluster's servers (the original's
// diffvariables): a replica with another sql_mode, a smaller max_allowed_packet or another
// version is how a failover surprises. Variables that must differ from server to server
// (identity, paths, positions, role) are left out.

// VariableDiff is one variable with each server's value.
type VariableDiff struct {
	Name   string           `json:"variableName"`
	Values []ServerVarValue `json:"diffValues"`
}

// ServerVarValue is one server's value of a variable.
type ServerVarValue struct {
	Server string `json:"serverName"`
	Value  string `json:"variableValue"`
}

// perServerVariables differ by design: which server, where its files are, where it stands
// in the binary log, its role.
var perServerVariables = map[string]bool{
	"server_id": true, "server_uid": true, "hostname": true, "port": true, "socket": true, "bind_address": true,
	"pid_file": true, "datadir": true, "tmpdir": true, "log_error": true, "general_log_file": true,
	"slow_query_log_file": true, "log_bin_basename": true, "log_bin_index": true, "relay_log": true,
	"relay_log_basename": true, "relay_log_index": true, "relay_log_info_file": true, "master_info_file": true,
	"gtid_binlog_pos": true, "gtid_binlog_state": true, "gtid_current_pos": true, "gtid_slave_pos": true,
	"read_only": true, "report_host": true, "report_port": true, "innodb_buffer_pool_filename": true,
	"rpl_semi_sync_master_enabled": true, "rpl_semi_sync_slave_enabled": true, "ssl_cert": true, "ssl_key": true,
	"plugin_dir": true, "lc_messages_dir": true, "character_sets_dir": true, "secure_file_priv": true,
	"innodb_data_home_dir": true, "innodb_log_group_home_dir": true, "innodb_undo_directory": true,
	"aria_log_dir_path": true, "log_basename": true, "general_log": true, "timestamp": true,
	"slave_load_tmpdir": true, "wsrep_data_home_dir": true, "innodb_temp_data_file_path": true,
}

func (s *Server) handleDiffVariables(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	hosts := s.cached(rc.member).hosts
	ctx, cancel := context.WithTimeout(r.Context(), inspectTimeout)
	defer cancel()
	values := make([]map[string]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func(i int, h ipv6.HostPort) {
			defer wg.Done()
			sr, err := s.opt.Inspect(rc.member, h)
			if err != nil {
				return
			}
			defer sr.Close()
			vars, err := sr.GlobalVariables(ctx)
			if err != nil {
				return
			}
			m := make(map[string]string, len(vars))
			for _, v := range vars {
				m[strings.ToLower(v.Name)] = v.Value
			}
			values[i] = m
		}(i, h)
	}
	wg.Wait()
	var unreachable []string
	names := map[string]bool{}
	for i, m := range values {
		if m == nil {
			unreachable = append(unreachable, hosts[i].String())
		}
		for n := range m {
			names[n] = true
		}
	}
	out := []VariableDiff{}
	for n := range names {
		if perServerVariables[n] {
			continue
		}
		d := VariableDiff{Name: strings.ToUpper(n)}
		differs := false
		var first *string
		for i, m := range values {
			if m == nil {
				continue
			}
			v, ok := m[n]
			if !ok {
				v = "(not set)"
			}
			if first == nil {
				first = &v
			} else if v != *first {
				differs = true
			}
			d.Values = append(d.Values, ServerVarValue{Server: hosts[i].String(), Value: mariadb.RedactVariable(n, v)})
		}
		if differs {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(unreachable) > 0 {
		w.Header().Set("X-Unreachable-Servers", strings.Join(unreachable, ","))
	}
	writeJSON(w, http.StatusOK, out)
}
