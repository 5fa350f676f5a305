package slapos

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gotoml "github.com/pelletier/go-toml/v2"

	"replication-manager-pro/config"
	"replication-manager-pro/internal/slaposrelease"
)

// SlapOS's software paths (its parts' binaries), which a render cannot know: the keys stay
// at their defaults and the daemon finds the tools in PATH.
var softwarePathKeys = map[string]bool{
	"db-servers-binary-path": true, "backup-restic-binary-path": true, "backup-mysqlclient-path": true,
	"backup-mysqlbinlog-path": true, "backup-mysqldump-path": true, "sysbench-binary-path": true,
}

var templateKey = regexp.MustCompile(`^([a-z][a-z0-9-]*)\s*=`)

// templateKeys lists the keys a template of SlapOS's (our fixtures) writes.
func templateKeys(t *testing.T, name string) []string {
	f, err := os.Open(filepath.Join(slaposrelease.Dir(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := templateKey.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			keys = append(keys, m[1])
		}
	}
	return keys
}

func tomlTable(t *testing.T, path, table string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := gotoml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	m, _ := doc[table].(map[string]any)
	return m
}

// The files a render writes hold every key SlapOS's templates write (but its software
// paths), with SlapOS's profile's defaults.
func TestRenderWritesSlapOSTemplateKeys(t *testing.T) {
	req := mustRequest(t, `{"repman-cluster-dict": {"cluster1": {"autoseed": true}}, "require-ssl": true}`)
	out := t.TempDir()
	if _, err := Render(req, RenderOptions{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	def := tomlTable(t, filepath.Join(out, "config.toml"), "Default")
	cl := tomlTable(t, filepath.Join(out, "cluster.d", "config-cluster1.toml"), "cluster1")
	for _, tc := range []struct {
		tmpl string
		got  map[string]any
	}{{"config.toml.in", def}, {"cluster-config.toml.in", cl}} {
		keys := templateKeys(t, tc.tmpl)
		if len(keys) < 20 {
			t.Fatalf("%s: only %d keys read", tc.tmpl, len(keys))
		}
		for _, k := range keys {
			if _, ok := tc.got[k]; !ok && !softwarePathKeys[k] {
				t.Errorf("%s writes %s, the render does not", tc.tmpl, k)
			}
		}
	}
	if cl["scheduler-db-servers-logical-backup-cron"] != "0 0 22 * * *" || cl["scheduler-db-servers-physical-backup-cron"] != "0 0 0 * * *" {
		t.Errorf("backup crons: %v %v", cl["scheduler-db-servers-logical-backup-cron"], cl["scheduler-db-servers-physical-backup-cron"])
	}
	if cl["scheduler-db-servers-receiver-ports"] != "2108,2208" || cl["autorejoin-logical-backup"] != true ||
		!strings.HasPrefix(cl["monitoring-write-heartbeat-credential"].(string), "heartbeat:") || def["monitoring-wait-retry"] != int64(1200) {
		t.Errorf("receiver ports %v, autorejoin-logical-backup %v, heartbeat %v, wait-retry %v", cl["scheduler-db-servers-receiver-ports"],
			cl["autorejoin-logical-backup"], cl["monitoring-write-heartbeat-credential"] != nil, def["monitoring-wait-retry"])
	}
	// The certificate the keys name exists; require-ssl reaches the database partitions.
	for _, k := range []string{"monitoring-ssl-cert", "monitoring-ssl-key"} {
		if _, err := os.Stat(def[k].(string)); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	var preqs []struct {
		Config map[string]any `json:"config"`
	}
	b, _ := os.ReadFile(filepath.Join(out, partitionRequestsFile))
	if err := json.Unmarshal(b, &preqs); err != nil || len(preqs) != 2 || preqs[0].Config["require-ssl"] != true || preqs[1].Config["heartbeat-user"] != HeartbeatUser {
		t.Errorf("partition requests: %v\n%s", err, b)
	}
	// And the result loads, SlapOS's keys we do not implement being accepted.
	if _, err := config.Load(filepath.Join(out, "config.toml"), config.Options{}); err != nil {
		t.Fatal(err)
	}
}

// Per cluster, SlapOS's tag-list and db-prefered-master are taken; a preferred master that
// is not one of the databases is refused, naming the parameter.
func TestRenderTagListAndPreferedMaster(t *testing.T) {
	out := t.TempDir()
	req := mustRequest(t, `{"repman-cluster-dict": {"c1": {"database-amount": 3, "tags": ["innodb"], "tag-list": ["gtidstrict", "ssl"], "db-prefered-master": "[::1]:2199"}}}`)
	if _, err := Render(req, RenderOptions{OutDir: out}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(out, "config.toml"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cfg.Cluster("c1")
	if c.Settings.ProvDBTags != "gtidstrict,ssl" || c.Settings.DBServersPreferedMaster != "[::1]:2199" {
		t.Errorf("tags %q, prefered master %q", c.Settings.ProvDBTags, c.Settings.DBServersPreferedMaster)
	}
	req = mustRequest(t, `{"repman-cluster-dict": {"c1": {"db-prefered-master": "[2001:db8::9]:2099"}}}`)
	if _, err := Render(req, RenderOptions{OutDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "c1: db-prefered-master:") {
		t.Fatalf("a preferred master outside the cluster: %v", err)
	}
}
