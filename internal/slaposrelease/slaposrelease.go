// Package slaposrelease writes, for tests, the configuration files SlapOS's repman software
// release writes for replication-manager: our fixtures config/testdata/slapos-release/*.in
// (shaped like its templates config.toml.in and cluster-config.toml.in) filled the way its
// instance profile fills them, with its defaults unless a test gives other values.
package slaposrelease

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
)

// Dir is the directory of the templates.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "testdata", "slapos-release")
}

// Defaults are the values SlapOS's instance profile gives when the request leaves them out
// (instance-repman.cfg.jinja2.in), and sample addresses, paths and passwords for the rest.
func Defaults() map[string]string {
	return map[string]string{
		// [Default]: repman-parameter
		"ipv4":                     "10.0.74.165",
		"http-session-lifetime":    "86400",
		"http-refresh-interval-ms": "4000", // http-refresh-interval 4 (s) * 1000
		"username":                 "admin",
		"password":                 "Pw4RepmanAdmin12",
		"cluster-d":                "/srv/slapgrid/slappart7/etc/repman/cluster.d",
		"mysql-bin-dir":            "/opt/slapos/parts/mariadb/bin",
		"ssl-cert":                 "/srv/slapgrid/slappart7/etc/ssl/repman-cert.crt",
		"ssl-key":                  "/srv/slapgrid/slappart7/etc/ssl/repman-cert.key",
		"haproxy-bin":              "/opt/slapos/parts/haproxy/sbin/haproxy",
		"restic-bin":               "/opt/slapos/parts/restic/bin/restic",
		"mysqlclient-path":         "/opt/slapos/parts/mariadb/bin/mysql",
		"mysqlbinlog-path":         "/opt/slapos/parts/mariadb/bin/mysqlbinlog",
		"mysqldump-path":           "/opt/slapos/parts/mariadb/bin/mysqldump",
		"mail-from":                "mrm@localhost",
		"mail-smtp-addr":           "localhost",
		"mail-smtp-port":           "25",
		"mail-smtp-password":       "",
		"mail-smtp-user":           "",
		"mail-to":                  "",
		"sysbench-bin":             "/opt/slapos/parts/sysbench/bin/sysbench",
		// [cluster]: <name>-cluster-parameter
		"name":                   "cluster1",
		"db-list":                "[2001:db8::10]:2099,[2001:db8::11]:2199",
		"db-prefered-master":     "[2001:db8::10]:2099",
		"db-user":                "repman",
		"db-password":            "Pw4DbRoot1234567",
		"heartbeat-user":         "heartbeat",
		"heartbeat-password":     "Pw4DbRoot1234567",
		"partition-list":         "/srv/slapgrid/slappart10,/srv/slapgrid/slappart11",
		"proxysql-partition":     "/srv/slapgrid/slappart7/proxy/cluster1",
		"proxy-port":             "7032",
		"proxy-admin-port":       "6032",
		"proxysql-servers":       "10.0.74.165",
		"proxysql-servers-ipv6":  "[2001:db8::5]",
		"proxysql-user":          "external",
		"enabled-tags":           "gtidstrict,bind,pkg,innodb,noquerycache,slow,pfs,linux,readonly,diskmonitor,sqlerror,compressbinlog,bm4ci,mroonga,utctime,readcommitted,nohandshake,ssl",
		"proxy-tags":             "pkg,masterslave,linux,noreadwritesplit,ssl",
		"logical-backup-cron":    "0 22 * * *",
		"physical-backup-cron":   "0 0 * * *",
		"receiver-port-list":     "4444,4444",
		"proxy-cpu-cores":        "2",
		"proxy-memory":           "1",
		"db-cpu-cores":           "2",
		"db-disk-iops":           "300",
		"db-memory":              "256",
		"db-memory-shared-pct":   "threads:16,innodb:60,myisam:10,aria:10,rocksdb:1,s3:1,archive:1,querycache:0",
		"db-memory-threaded-pct": "tmp:70,join:20,sort:10",
		"failover-mode":          "manual",
		"failover-limit":         "5",
		"failover-falsepositive-heartbeat-timeout": "3",
		"failover-falsepositive-ping-counter":      "5",
		"failover-max-slave-delay":                 "30",
		"failover-time-limit":                      "0",
		"switchover-wait-kill":                     "5000",
		"switchover-wait-trx":                      "10",
		"switchover-wait-write-query":              "10",
	}
}

var placeholder = regexp.MustCompile(`\$\{([a-z0-9-]+)\}`)

// Fill replaces the ${name} placeholders of a template; a placeholder without a value is an
// error naming it.
func Fill(template string, values map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(template, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("no value for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// Render writes config.toml into dir and cluster.d/config-<name>.toml for each cluster
// (each map is merged over Defaults(); the cluster-d value is set to dir/cluster.d) and
// returns the path of config.toml.
func Render(dir string, global map[string]string, clusters ...map[string]string) (string, error) {
	if len(clusters) == 0 {
		clusters = []map[string]string{{}}
	}
	merge := func(over map[string]string) map[string]string {
		v := Defaults()
		for k, x := range global {
			v[k] = x
		}
		for k, x := range over {
			v[k] = x
		}
		v["cluster-d"] = filepath.Join(dir, "cluster.d")
		return v
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(Dir(), name))
		return string(b), err
	}
	main, err := read("config.toml.in")
	if err != nil {
		return "", err
	}
	cl, err := read("cluster-config.toml.in")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "cluster.d"), 0o755); err != nil {
		return "", err
	}
	text, err := Fill(main, merge(nil))
	if err != nil {
		return "", fmt.Errorf("config.toml.in: %w", err)
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", err
	}
	for _, c := range clusters {
		v := merge(c)
		text, err := Fill(cl, v)
		if err != nil {
			return "", fmt.Errorf("cluster-config.toml.in: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cluster.d", "config-"+v["name"]+".toml"), []byte(text), 0o600); err != nil {
			return "", err
		}
	}
	return path, nil
}
