package config

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
)

// The catalogue of replication-manager's own keys (upstream_keys.txt) and the status of
// every key here:
//
//   - implemented: a key of Settings that changes what the program does;
//   - accepted, no effect yet: an upstream key we do not implement (not in Settings), or a
//     key of Settings listed in noEffectYet. A file or command line may set it; the value is
//     checked against the key's type, kept, printed by `config check` and named by one
//     warning at start. Never an error;
//   - ours: a key of Settings replication-manager does not have;
//   - unknown: anything else, an error with a did-you-mean.

//go:embed upstream_keys.txt
var upstreamText string

// UpstreamKey is one key of replication-manager's configuration, as facts about it.
type UpstreamKey struct {
	Name    string
	Kind    Kind
	Default string // upstream built-in default, as text
}

var (
	upstream       []UpstreamKey  // sorted by name
	upstreamByName map[string]int // name -> index in upstream
)

// noEffectYet lists the keys of Settings that are read and checked but change nothing yet
// (no code outside the config package uses them). A test fails when one of them starts to
// be used, so that this list, `config check` and docs/compat.md stay true: whoever
// implements one removes it from here.
var noEffectYet = map[string]bool{
	"alert-script": true, "alert-slack-url": true,
	"autorejoin-flashback": true, "autorejoin-flashback-on-sync": true, "autorejoin-force-restore": true,
	"autorejoin-logical-backup": true, "autorejoin-mysqldump": true, "autorejoin-physical-backup": true,
	"autorejoin-script": true, "autorejoin-slave-positional-heartbeat": true, "autorejoin-zfs-flashback": true,
	"backup": true, "backup-binlogs": true,
	"backup-restic-aws": true,
	"binlog-copy-mode":  true, "binlog-copy-script": true,
	"check-binlog-filters": true, "check-replication-errant-trx": true, "check-replication-filters": true,
	"compress-backups":               true,
	"db-servers-state-change-script": true,
	"db-servers-tls-ca-cert":         true, "db-servers-tls-client-cert": true, "db-servers-tls-client-key": true,
	"failover-check-delay-stat": true, "failover-event-scheduler": true, "failover-event-status": true,
	"failover-falsepositive-external": true, "failover-falsepositive-external-port": true,
	"failover-falsepositive-maxscale": true, "failover-mdev-check": true, "failover-semisync-state": true,
	"failover-superreadonly-state": true,
	"haproxy-binary-path":          true, "haproxy-mode": true, "http-root": true,
	"mail-smtp-tls-skip-verify": true,
	"maxscale":                  true, "maxscale-pass": true, "maxscale-port": true, "maxscale-read-port": true,
	"maxscale-read-write-port": true, "maxscale-servers": true, "maxscale-user": true, "maxscale-write-port": true,
	"monitoring-alert-trigger": true, "monitoring-ignore-errors": true, "monitoring-sharedir": true,
	"onpremise-ssh": true, "onpremise-ssh-credential": true, "onpremise-ssh-port": true,
	"prov-db-agents": true, "prov-db-apply-dynamic-config": true, "prov-db-binary-basedir": true,
	"prov-db-bootstrap-script": true, "prov-db-cleanup-script": true, "prov-db-client-basedir": true,
	"prov-db-disk-size": true, "prov-db-start-script": true, "prov-db-stop-script": true,
	"prov-proxy-agents": true, "prov-proxy-bootstrap-script": true, "prov-proxy-cleanup-script": true,
	"prov-proxy-start-script": true, "prov-proxy-stop-script": true, "prov-serialized": true,
	"proxysql-bootstrap-query-rules": true, "proxysql-bootstrap-variables": true,
	"replication-delayed-hosts": true, "replication-delayed-time": true, "replication-multi-master": true,
	"replication-multi-master-wsrep": true, "replication-multi-tier-slave": true,
	"scheduler-jobs-ssh": true, "scheduler-rolling-restart": true,
	"slapos-maxscale-partitions": true, "slapos-shardproxy-partitions": true, "slapos-sphinx-partitions": true,
	"switchover-at-sync": true, "switchover-copy-old-leader-gtid": true, "switchover-decrease-max-conn": true,
	"switchover-decrease-max-conn-value": true, "switchover-lower-release": true, "switchover-wait-route-change": true,
	"sysbench-binary-path": true, "sysbench-threads": true, "sysbench-time": true, "sysbench-v1": true,
	"topology-target": true,
}

func init() {
	byName := map[string]int{}
	for n, line := range strings.Split(upstreamText, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			panic(fmt.Sprintf("config: upstream_keys.txt line %d: want name | kind | default", n+1))
		}
		k := UpstreamKey{Name: strings.TrimSpace(parts[0]), Default: strings.TrimSpace(parts[2])}
		switch strings.TrimSpace(parts[1]) {
		case "string":
			k.Kind = KindString
		case "bool":
			k.Kind = KindBool
		case "int":
			k.Kind = KindInt
		case "float":
			k.Kind = KindFloat
		default:
			panic(fmt.Sprintf("config: upstream_keys.txt line %d: unknown kind %q", n+1, parts[1]))
		}
		if k.Name != strings.ToLower(k.Name) || strings.ContainsAny(k.Name, " \t_") {
			panic(fmt.Sprintf("config: upstream_keys.txt line %d: bad key name %q", n+1, k.Name))
		}
		if _, dup := byName[k.Name]; dup {
			panic("config: upstream_keys.txt: duplicate key " + k.Name)
		}
		if _, err := parseText(Key{Name: k.Name, Kind: k.Kind}, k.Default); err != nil && k.Default != "" {
			panic("config: upstream_keys.txt: bad default for " + k.Name + ": " + err.Error())
		}
		byName[k.Name] = len(upstream)
		upstream = append(upstream, k)
	}
	sort.Slice(upstream, func(i, j int) bool { return upstream[i].Name < upstream[j].Name })
	upstreamByName = make(map[string]int, len(upstream))
	for i, k := range upstream {
		upstreamByName[k.Name] = i
	}
}

// UpstreamKeys returns replication-manager's keys, sorted by name.
func UpstreamKeys() []UpstreamKey { return append([]UpstreamKey(nil), upstream...) }

// LookupUpstream returns replication-manager's key of that name (any case).
func LookupUpstream(name string) (UpstreamKey, bool) {
	i, ok := upstreamByName[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return UpstreamKey{}, false
	}
	return upstream[i], true
}

// acceptedKey returns the upstream key a name denotes when it is not a key or alias of
// Settings: a key accepted without effect.
func acceptedKey(name string) (UpstreamKey, bool) {
	if _, ok := Canonical(name); ok {
		return UpstreamKey{}, false
	}
	return LookupUpstream(name)
}

// KeyStatus says how a key is handled here.
type KeyStatus int

// The statuses of a key.
const (
	StatusUnknown     KeyStatus = iota
	StatusImplemented           // a key of Settings that has its effect
	StatusNoEffect              // accepted, no effect yet
)

func (s KeyStatus) String() string {
	switch s {
	case StatusImplemented:
		return "implemented"
	case StatusNoEffect:
		return "accepted, no effect yet"
	}
	return "unknown"
}

// StatusOf returns the status of a key or alias (any case).
func StatusOf(name string) KeyStatus {
	if c, ok := Canonical(name); ok {
		if noEffectYet[c] {
			return StatusNoEffect
		}
		return StatusImplemented
	}
	if _, ok := LookupUpstream(name); ok {
		return StatusNoEffect
	}
	return StatusUnknown
}

// NoEffectSetting is one key set in the configuration that is accepted but has no effect.
type NoEffectSetting struct {
	Key     string // canonical name
	File    string // where it was set (CommandLine, Environment or a file)
	Section string
}

// NoEffect lists the keys accepted without effect that the configuration of this cluster
// sets (in its table, [Default], the environment or the command line), sorted by key.
func (c *Cluster) NoEffect() []NoEffectSetting {
	var out []NoEffectSetting
	for k, o := range c.origins {
		if noEffectYet[k] {
			out = append(out, NoEffectSetting{Key: k, File: o.file, Section: o.section})
		}
	}
	for k, a := range c.Accepted {
		out = append(out, NoEffectSetting{Key: k, File: a.File, Section: a.Section})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// NoEffectKeys returns the names of the keys every cluster of the configuration sets
// without effect, once each, sorted: what the daemon names in its one start warning.
func (c *Config) NoEffectKeys() []string {
	seen := map[string]bool{}
	var out []string
	for i := range c.Clusters {
		for _, s := range c.Clusters[i].NoEffect() {
			if !seen[s.Key] {
				seen[s.Key] = true
				out = append(out, s.Key)
			}
		}
	}
	sort.Strings(out)
	return out
}

// AcceptedValue is the value of an upstream key accepted without effect, as written, with
// where it came from.
type AcceptedValue struct {
	Value   string // as text; a secret is kept but never printed (Mask)
	File    string
	Section string
}

// differences explains, key by key, where this program deliberately differs from
// replication-manager for a key both have: a default or a meaning. docs/compat.md prints
// them; a test requires a note for every key whose default differs from upstream's.
var differences = map[string]string{
	"api-credentials-acl-allow":     "the admin user also gets the `global` grants (adding and deleting clusters), as in replication-manager 3.x",
	"api-credentials-external":      "no default users: replication-manager shipped `dba:repman,foo:bar`, well-known passwords",
	"backup-restic-password":        "no default: replication-manager's default was the word `secret`",
	"force-slave-heartbeat":         "on by default: the replicas' heartbeat period is what fast dead-master detection needs",
	"maxscale-port":                 "4003, MaxScale's REST API port, instead of 6603 (maxadmin, removed from MaxScale)",
	"monitoring-save-config":        "on by default, as replication-manager 2.x had it (its newest flag default is off); changes made through the API are saved as it saved them, `[saved-<cluster>]` in `<working dir>/<cluster>/<cluster>.toml`",
	"monitoring-ticker":             "fractions of a second are allowed (0.2)",
	"scheduler-db-servers-optimize": "off by default: no optimize job is scheduled",
	"backup-binlogs-method":         "an alias of `binlog-copy-mode`",
	"backup-binlogs-script":         "an alias of `binlog-copy-script`",
}

// Difference returns the note on how a key deliberately differs from replication-manager,
// or "".
func Difference(key string) string { return differences[key] }
