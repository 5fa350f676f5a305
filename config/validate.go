package config

import (
	"fmt"
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
		v := fieldOf(s, k)
		switch k.Kind {
		case KindInt:
			n := int(v.Int())
			switch {
			case n < 0:
				bad(k.Name, "must not be negative, got %d", n)
			case strings.HasSuffix(k.Name, "-port") && n > 65535:
				bad(k.Name, "not a port number (0-65535): %d", n)
			}
		case KindFloat:
			if f := v.Float(); f < 0 {
				bad(k.Name, "must not be negative, got %s", formatValue(f))
			}
		case KindString:
			str := v.String()
			switch {
			case strings.HasSuffix(k.Name, "-cron"):
				if _, err := cronParser.Parse(str); err != nil {
					bad(k.Name, "not a cron schedule with 6 fields (seconds first) or @descriptor: %v", err)
				}
			case strings.HasSuffix(k.Name, "-ports"):
				for _, p := range splitList(str) {
					if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
						bad(k.Name, "not a port number (0-65535): %q", p)
					}
				}
			case strings.HasSuffix(k.Name, "-credential"):
				if _, err := ParseCredential(str); err != nil {
					bad(k.Name, "%v", err)
				}
			case strings.HasSuffix(k.Name, "-credentials") || k.Name == "api-credentials-external":
				if _, err := ParseCredentials(str); err != nil {
					bad(k.Name, "%v", err)
				}
			}
		}
	}

	if s.MonitoringTicker <= 0 {
		bad("monitoring-ticker", "must be more than 0 seconds, got %s", formatValue(s.MonitoringTicker))
	}
	if s.LogLevel < 0 || s.LogLevel > MaxLogLevel {
		bad("log-level", "must be between 0 and %d, got %d", MaxLogLevel, s.LogLevel)
	}
	if s.FailoverMode != "manual" && s.FailoverMode != "automatic" {
		bad("failover-mode", "must be manual or automatic, got %q", s.FailoverMode)
	}
	if !contains(orchestrators, s.ProvOrchestrator) {
		bad("prov-orchestrator", "must be one of %s, got %q", strings.Join(orchestrators, ", "), s.ProvOrchestrator)
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
