package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"

	"replication-manager-pro/ipv6"
)

// hostListKeys are the keys holding comma-separated host[:port] lists, with the
// key giving the default port of their entries ("" = ipv6.DefaultPort).
var hostListKeys = []struct{ key, portKey string }{
	{"db-servers-hosts", ""},
	{"db-servers-prefered-master", ""},
	{"db-servers-ignored-hosts", ""},
	{"db-servers-ignored-readonly", ""},
	{"db-servers-backup-hosts", ""},
	{"replication-delayed-hosts", ""},
	{"proxysql-servers", "proxysql-admin-port"},
	{"proxysql-servers-ipv6", "proxysql-port"},
	{"haproxy-servers", "haproxy-api-port"},
	{"haproxy-servers-ipv6", "haproxy-write-port"},
	{"maxscale-servers", "maxscale-port"},
}

var orchestrators = []string{"local", "slapos", "onpremise", "opensvc", "kube"}

// MaxLogLevel is the highest accepted log-level (0 is the quietest).
const MaxLogLevel = 7

var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks the semantic rules of one cluster's effective settings and
// returns every problem found, with Key set to the canonical key and File and
// Section left empty (Load fills them from where the value came from). Pure.
func Validate(s *Settings) []Problem {
	var ps []Problem
	bad := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}

	for _, k := range registry {
		for _, m := range checkValue(k, fieldOf(s, k).Interface()) {
			bad(k.Name, "%s", m)
		}
	}

	lists := map[string][]ipv6.HostPort{}
	for _, hk := range hostListKeys {
		port := ipv6.DefaultPort
		if hk.portKey != "" {
			p, _ := s.Get(hk.portKey)
			port = p.(int)
		}
		text, _ := s.Text(hk.key)
		l, err := ipv6.ParseList(text, port)
		if err != nil {
			bad(hk.key, "bad host list: %v", err)
			continue
		}
		lists[hk.key] = l
	}
	if (s.EtcdTLSClientCert == "") != (s.EtcdTLSClientKey == "") {
		bad("etcd-tls-client-cert", "etcd-tls-client-cert and etcd-tls-client-key go together")
	}
	if s.EtcdEndpoints == "" && (s.EtcdUsername != "" || s.EtcdTLSCACert != "") {
		bad("etcd-endpoints", "empty, but etcd credentials or TLS are set: which etcd?")
	}
	hosts, hostsOK := lists["db-servers-hosts"]
	if hostsOK && len(hosts) == 0 {
		bad("db-servers-hosts", "no database hosts: every cluster needs db-servers-hosts")
	}
	if hostsOK {
		for _, pm := range lists["db-servers-prefered-master"] {
			if !containsHost(hosts, pm) {
				bad("db-servers-prefered-master", "%s is not in db-servers-hosts", pm.String())
			}
		}
		if n := len(splitList(s.SlapOSDBPartitions)); n > len(hosts) {
			bad("slapos-db-partitions", "%d partitions for %d db-servers-hosts; the k-th partition hosts the k-th database", n, len(hosts))
		}
	}
	return ps
}

// checkValue applies the rules that concern one key alone to its typed value
// v: the range of a number (the key's Min and Max), the form of a port list, a
// cron schedule, a credential. It returns the problems, none holding a secret.
// Validate and Settings.Set share it, so files and the API obey the same rules.
func checkValue(k Key, v any) []string {
	var out []string
	if err := checkRange(k, v); err != nil {
		out = append(out, err.Error())
	}
	str, ok := v.(string)
	if !ok {
		return out
	}
	switch {
	case k.Name == "failover-mode":
		if str != "manual" && str != "automatic" {
			out = append(out, fmt.Sprintf("must be manual or automatic, got %q", str))
		}
	case k.Name == "prov-orchestrator":
		if !contains(orchestrators, str) {
			out = append(out, fmt.Sprintf("must be one of %s, got %q", strings.Join(orchestrators, ", "), str))
		}
	case strings.HasSuffix(k.Name, "-cron"):
		if _, err := cronParser.Parse(str); err != nil {
			out = append(out, fmt.Sprintf("not a cron schedule with 6 fields (seconds first) or @descriptor: %v", err))
		}
	case strings.HasSuffix(k.Name, "-ports"):
		for _, p := range splitList(str) {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				out = append(out, fmt.Sprintf("not a port number (1-65535): %q", p))
			}
		}
	case k.Name == "etcd-endpoints":
		for _, e := range splitList(str) {
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
				out = append(out, fmt.Sprintf("not an etcd client URL (http://host:port or https://host:port): %q", e))
			}
		}
	case k.Name == "etcd-prefix":
		if !strings.HasPrefix(str, "/") || strings.ContainsAny(str, "\x00\n") || len(str) > 200 {
			out = append(out, fmt.Sprintf("must start with / (at most 200 bytes, no NUL or newline), got %q", str))
		}
	case k.Name == "monitoring-write-heartbeat-credential" && str == "": // empty: db-servers-credential
	case strings.HasSuffix(k.Name, "-credential"):
		if _, err := ParseCredential(str); err != nil {
			out = append(out, err.Error())
		}
	case strings.HasSuffix(k.Name, "-credentials") || k.Name == "api-credentials-external":
		if _, err := ParseCredentials(str); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

func containsHost(l []ipv6.HostPort, h ipv6.HostPort) bool {
	for _, x := range l {
		if strings.EqualFold(x.Host, h.Host) && x.Port == h.Port {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// splitList splits a comma-separated list, trimming spaces and dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
