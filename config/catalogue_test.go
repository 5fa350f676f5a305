package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"replication-manager-pro/internal/slaposrelease"
)

// The files SlapOS's repman software release writes load: every key is known, the keys we
// do not implement are accepted and listed, values keep their types.
func TestSlapOSReleaseFilesLoad(t *testing.T) {
	dir := t.TempDir()
	path, err := slaposrelease.Render(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, path, Options{})
	c, ok := cfg.Cluster("cluster1")
	if !ok {
		t.Fatalf("clusters: %v", cfg.Names())
	}
	s := &c.Settings
	if !s.ReplicationUseSSL || !s.TestInjectTraffic || s.MonitoringWaitRetry != 1200 || !s.MonitoringSaveConfig {
		t.Errorf("values not read: replication-use-ssl %v test-inject-traffic %v monitoring-wait-retry %d monitoring-save-config %v",
			s.ReplicationUseSSL, s.TestInjectTraffic, s.MonitoringWaitRetry, s.MonitoringSaveConfig)
	}
	if s.MonitoringSSLCert != "/srv/slapgrid/slappart7/etc/ssl/repman-cert.crt" || s.SchedulerDBServersReceiverPorts != "4444,4444" {
		t.Errorf("monitoring-ssl-cert %q, receiver ports %q", s.MonitoringSSLCert, s.SchedulerDBServersReceiverPorts)
	}
	if s.HTTPRefreshInterval != 4000 || s.HTTPSessionLifetime != 86400 || s.MailSMTPAddr != "localhost:25" {
		t.Errorf("http-refresh-interval %d, http-session-lifetime %d, mail-smtp-addr %q", s.HTTPRefreshInterval, s.HTTPSessionLifetime, s.MailSMTPAddr)
	}
	if s.SchedulerDBServersLogicalBackupCron != "0 0 22 * * *" || !s.AutorejoinLogicalBackup || !s.Autoseed {
		t.Errorf("logical backup cron %q, autorejoin-logical-backup %v, autoseed %v", s.SchedulerDBServersLogicalBackupCron, s.AutorejoinLogicalBackup, s.Autoseed)
	}
	// db-servers-binary-path is an old name of prov-db-binary-basedir.
	if s.ProvDBBinaryBasedir != "/opt/slapos/parts/mariadb/bin" {
		t.Errorf("db-servers-binary-path alias: %q", s.ProvDBBinaryBasedir)
	}
	ne := map[string]NoEffectSetting{}
	for _, x := range c.NoEffect() {
		ne[x.Key] = x
	}
	for _, k := range []string{"backup", "backup-restic-aws", "backup-mysqldump-options", "sysbench-v1", "autorejoin-logical-backup"} {
		if _, ok := ne[k]; !ok {
			t.Errorf("%s is set without effect but not listed: %v", k, c.NoEffect())
		}
	}
	if x := ne["backup-restic-aws"]; x.File != path || x.Section != "Default" {
		t.Errorf("backup-restic-aws origin %+v, want %s [Default]", x, path)
	}
	if _, listed := ne["failover-mode"]; listed {
		t.Error("failover-mode is implemented, listed as without effect")
	}
	var out bytes.Buffer
	cfg.WriteTOML(&out, true)
	text := out.String()
	for _, want := range []string{"# accepted, no effect yet: ", "backup-restic-aws (" + path + " [Default])"} {
		if !strings.Contains(text, want) {
			t.Errorf("config check output lacks %q:\n%s", want, text)
		}
	}
	for _, secret := range []string{"Pw4RepmanAdmin12", "Pw4DbRoot1234567"} {
		if strings.Contains(text, secret) {
			t.Errorf("config check output shows a secret:\n%s", text)
		}
	}
	if keys := cfg.NoEffectKeys(); len(keys) == 0 || keys[0] > keys[len(keys)-1] {
		t.Errorf("NoEffectKeys: %v", keys)
	}
}

// An upstream key we do not implement is accepted, checked against its type, printed; a key
// nobody knows is an error with a suggestion drawn from both catalogues.
func TestAcceptedUpstreamKeys(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[Default]
monitoring-capture-trigger = "ERR00076"
graphite-carbon-port = "2003"
vault-token = "VaultTok3n"

[c1]
db-servers-hosts = "127.0.0.1:3306"
graphite-metrics = true
`})
	cfg := mustLoad(t, filepath.Join(dir, "config.toml"), Options{Overrides: map[string]string{"log-sst": "false"}})
	c, _ := cfg.Cluster("c1")
	want := map[string]string{"monitoring-capture-trigger": "ERR00076", "graphite-carbon-port": "2003",
		"graphite-metrics": "true", "log-sst": "false", "vault-token": "VaultTok3n"}
	for k, v := range want {
		if got := c.Accepted[k].Value; got != v {
			t.Errorf("accepted %s = %q, want %q", k, got, v)
		}
	}
	if a := c.Accepted["log-sst"]; a.File != CommandLine {
		t.Errorf("log-sst origin %+v", a)
	}
	var out bytes.Buffer
	cfg.WriteTOML(&out, true)
	if !strings.Contains(out.String(), "graphite-metrics = true\n") || !strings.Contains(out.String(), `vault-token = "*:*"`) ||
		strings.Contains(out.String(), "VaultTok3n") {
		t.Errorf("accepted keys printed wrong:\n%s", out.String())
	}

	dir = writeTree(t, map[string]string{"config.toml": `
[c1]
db-servers-hosts = "127.0.0.1:3306"
graphite-carbon-port = "many"
graphite-metricz = true
backup-mysqldump-optons = "--x"
`})
	lines := problemsOf(t, filepath.Join(dir, "config.toml"), Options{})
	if !hasLineContaining(lines, "[c1] graphite-carbon-port: want an integer") {
		t.Errorf("bad type of an accepted key: %v", lines)
	}
	if !hasLineContaining(lines, `[c1] graphite-metricz: unknown key; did you mean "graphite-metrics"?`) ||
		!hasLineContaining(lines, `backup-mysqldump-optons: unknown key; did you mean "backup-mysqldump-options"?`) {
		t.Errorf("unknown keys without suggestion: %v", lines)
	}
}

// DEFAULT_<KEY> environment variables set [Default] values, below the cluster tables; a bad
// value names the variable and never shows a secret.
func TestEnvironmentDefaults(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[c1]
db-servers-hosts = "127.0.0.1:3306"
failover-limit = 2
[c2]
db-servers-hosts = "127.0.0.1:3307"
`})
	path := filepath.Join(dir, "config.toml")
	cfg := mustLoad(t, path, Options{Env: []string{"PATH=/bin", "DEFAULT_FAILOVER_MODE=automatic",
		"DEFAULT_FAILOVER_LIMIT=9", "DEFAULT_GRAPHITE_METRICS=true", "DEFAULT_NOT_A_KEY=1", "DEFAULT_USER=x:y"}})
	c1, _ := cfg.Cluster("c1")
	c2, _ := cfg.Cluster("c2")
	if c1.Settings.FailoverMode != "automatic" || cfg.Default.FailoverMode != "automatic" {
		t.Errorf("DEFAULT_FAILOVER_MODE not applied")
	}
	if c1.Settings.FailoverLimit != 2 || c2.Settings.FailoverLimit != 9 {
		t.Errorf("failover-limit c1 %d (table wins) c2 %d (environment)", c1.Settings.FailoverLimit, c2.Settings.FailoverLimit)
	}
	if f, _, _ := c2.Origin("failover-limit"); f != Environment {
		t.Errorf("origin of failover-limit: %q", f)
	}
	if c1.Accepted["graphite-metrics"].Value != "true" {
		t.Errorf("accepted key from the environment: %v", c1.Accepted)
	}
	if c1.Settings.DBServersCredential != Defaults().DBServersCredential {
		t.Error("DEFAULT_USER (an alias) was read")
	}
	lines := problemsOf(t, path, Options{Env: []string{"DEFAULT_FAILOVER_LIMIT=lots", "DEFAULT_DB_SERVERS_CREDENTIAL=nocolonSecret"}})
	if !hasLineContaining(lines, "environment: DEFAULT_FAILOVER_LIMIT: want an integer") {
		t.Errorf("bad environment value: %v", lines)
	}
	if !hasLineContaining(lines, "environment: DEFAULT_DB_SERVERS_CREDENTIAL") || strings.Contains(strings.Join(lines, "\n"), "nocolonSecret") {
		t.Errorf("bad secret in the environment: %v", lines)
	}
	if got := EnvName("failover-mode"); got != "DEFAULT_FAILOVER_MODE" {
		t.Errorf("EnvName: %s", got)
	}
}

// Every key of noEffectYet is a key of Settings, and no code outside the config package uses
// one: whoever implements such a key must drop it from the list (docs/compat.md and the
// start warning would lie otherwise).
func TestNoEffectYetIsTrue(t *testing.T) {
	fields := map[string]string{} // key -> field name
	for _, k := range registry {
		fields[k.Name] = reflectFieldName(k)
	}
	for k := range noEffectYet {
		if _, ok := fields[k]; !ok {
			t.Errorf("noEffectYet names %s, not a key of Settings", k)
		}
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..")
	type pat struct {
		key    string
		needle []string // cheap substrings, one of which a match contains
		re     *regexp.Regexp
	}
	var pats []pat
	for k := range noEffectYet {
		// A field reference (s.FieldName, not a method call), for names distinctive enough
		// not to be another struct's field (Backup, MaxScale are not).
		var alts []string
		var needles []string
		if len(fields[k]) >= 10 {
			alts = append(alts, `\.`+fields[k]+`\b[^(]`)
			needles = append(needles, "."+fields[k])
		}
		// The key read through a Settings accessor (a key merely named, in a list of keys or
		// a writer of configuration files, is not a use).
		alts = append(alts, `\.(Text|List|Get|HostList|Display)\("`+regexp.QuoteMeta(k)+`"`)
		needles = append(needles, `"`+k+`"`)
		pats = append(pats, pat{k, needles, regexp.MustCompile(strings.Join(alts, "|"))})
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || n == "node_modules" || p == filepath.Join(root, "config") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		// Files that write configuration files name keys without reading them.
		if rel, _ := filepath.Rel(root, p); writesConfig[filepath.ToSlash(rel)] {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, x := range pats {
			hit := false
			for _, n := range x.needle {
				hit = hit || bytes.Contains(b, []byte(n))
			}
			if !hit {
				continue
			}
			if loc := x.re.FindIndex(b); loc != nil {
				rel, _ := filepath.Rel(root, p)
				t.Errorf("%s is used by %s (%q): it has an effect now; remove it from noEffectYet in config/catalogue.go",
					x.key, rel, string(b[loc[0]:loc[1]]))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Where one of our defaults differs from replication-manager's, docs/compat.md says why.
func TestDefaultDifferencesExplained(t *testing.T) {
	for _, k := range registry {
		up, ok := LookupUpstream(k.Name)
		if !ok || (up.Default == "" && up.Kind != KindString) {
			continue
		}
		ak := acceptedKeyOf(up)
		a, _ := parseText(ak, up.Default)
		b, _ := parseText(ak, k.Default)
		if formatValue(a) != formatValue(b) && differences[k.Name] == "" {
			t.Errorf("%s: default %q here, %q in replication-manager: explain it in differences (config/catalogue.go)", k.Name, k.Default, up.Default)
		}
	}
	for k := range differences {
		if StatusOf(k) == StatusUnknown {
			t.Errorf("differences names unknown key %s", k)
		}
	}
}

func TestKeyStatus(t *testing.T) {
	for name, want := range map[string]KeyStatus{
		"failover-mode": StatusImplemented, "interactive": StatusImplemented, "backup-restic-aws": StatusNoEffect, "backup-restic": StatusImplemented,
		"graphite-metrics": StatusNoEffect, "Vault-Token": StatusNoEffect, "nonsense-key": StatusUnknown,
	} {
		if got := StatusOf(name); got != want {
			t.Errorf("StatusOf(%s) = %v, want %v", name, got, want)
		}
	}
}

// writesConfig are the files that write configuration files (they name keys, they do not
// read them).
var writesConfig = map[string]bool{"orchestrator/slapos/render.go": true}

func reflectFieldName(k Key) string {
	return reflect.TypeOf(Settings{}).Field(k.field).Name
}

// hash_ secrets, as replication-manager's password command writes them, are decrypted with
// the key of monitoring-key-path; a missing key file is a problem naming it, never the secret.
func TestHashSecrets(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dbHash, _ := EncryptSecret(key, "DbS3cret")
	apiHash, _ := EncryptSecret(key, "ApiS3cret")
	pxHash, _ := EncryptSecret(key, "PxS3cret")
	dir := writeTree(t, map[string]string{})
	keyPath := filepath.Join(dir, ".replication-manager.key")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := `
[Default]
monitoring-key-path = "` + keyPath + `"
api-credentials = "admin:` + apiHash + `,dba:plain"
[c1]
db-servers-hosts = "127.0.0.1:3306"
db-servers-credential = "repman:` + dbHash + `"
proxysql-password = "` + pxHash + `"
`
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte(conf), 0o600)
	cfg := mustLoad(t, path, Options{})
	c, _ := cfg.Cluster("c1")
	if c.Settings.DBServersCredential != "repman:DbS3cret" || c.Settings.ProxySQLPassword != "PxS3cret" ||
		c.Settings.APICredentials != "admin:ApiS3cret,dba:plain" || cfg.Default.APICredentials != "admin:ApiS3cret,dba:plain" {
		t.Errorf("not decrypted: %q %q %q", c.Settings.DBServersCredential, c.Settings.ProxySQLPassword, c.Settings.APICredentials)
	}
	os.Remove(keyPath)
	lines := problemsOf(t, path, Options{})
	if !hasLineContaining(lines, path+": [c1] db-servers-credential: written as a hash_ secret but the key file (monitoring-key-path) cannot be read: "+keyPath) {
		t.Errorf("missing key file: %v", lines)
	}
	joined := strings.Join(lines, "\n")
	if strings.Contains(joined, dbHash[5:20]) || strings.Contains(joined, "DbS3cret") {
		t.Errorf("problem shows the secret: %v", lines)
	}
	other, _ := GenerateKey()
	os.WriteFile(keyPath, other[:5], 0o600)
	if lines := problemsOf(t, path, Options{}); !hasLineContaining(lines, "5 bytes, want 16, 24 or 32") {
		t.Errorf("short key file: %v", lines)
	}
	if _, err := DecryptSecret(key, "hash_zz"); err == nil {
		t.Error("bad hex accepted")
	}
}

// monitoring-basedir moves the working directory to <basedir>/data as replication-manager
// did; SlapOS's own files (prov-orchestrator slapos, no slapos-legacy-anonymous-routes) get
// the legacy partition routes, an explicit false keeps them off.
func TestDerivedValues(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[Default]
prov-orchestrator = "slapos"
monitoring-datadir = "/var/lib/x"
[c1]
db-servers-hosts = "127.0.0.1:3306"
[c2]
db-servers-hosts = "127.0.0.1:3307"
slapos-legacy-anonymous-routes = false
`})
	path := filepath.Join(dir, "config.toml")
	cfg := mustLoad(t, path, Options{Overrides: map[string]string{"monitoring-basedir": "/srv/repman"}})
	c1, _ := cfg.Cluster("c1")
	c2, _ := cfg.Cluster("c2")
	if c1.Settings.MonitoringDatadir != "/srv/repman/data" || cfg.Default.MonitoringDatadir != "/srv/repman/data" {
		t.Errorf("working dir %q / %q", c1.Settings.MonitoringDatadir, cfg.Default.MonitoringDatadir)
	}
	if !c1.Settings.SlapOSLegacyAnonymousRoutes || !c1.LegacyRoutesImplied() {
		t.Error("SlapOS's files: legacy routes not implied")
	}
	if c2.Settings.SlapOSLegacyAnonymousRoutes || c2.LegacyRoutesImplied() {
		t.Error("explicit slapos-legacy-anonymous-routes = false overridden")
	}
	cfg = mustLoad(t, path, Options{})
	if c, _ := cfg.Cluster("c1"); c.Settings.MonitoringDatadir != "/var/lib/x" {
		t.Errorf("basedir system: %q", c.Settings.MonitoringDatadir)
	}
}

// Settings saved through the API come back at the next load, below the configuration files;
// only the cluster's [saved-<cluster>] table of its file is read.
func TestSavedSettings(t *testing.T) {
	dir := writeTree(t, map[string]string{"config.toml": `
[Default]
monitoring-datadir = "` + "DATADIR" + `"
[c1]
db-servers-hosts = "127.0.0.1:3306"
failover-mode = "manual"
[c2]
db-servers-hosts = "127.0.0.1:3307"
monitoring-save-config = false
`})
	path := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.ReplaceAll(b, []byte("DATADIR"), []byte(filepath.Join(dir, "data"))), 0o600)
	cfg := mustLoad(t, path, Options{})
	c1, _ := cfg.Cluster("c1")
	for key, val := range map[string]string{"failover-limit": "9", "failover-mode": "automatic", "graphite-metrics": "true", "autorejoin": "false"} {
		if err := SaveSetting(&c1.Settings, "c1", key, val); err != nil {
			t.Fatal(err)
		}
	}
	saved := filepath.Join(dir, "data", "c1", "c1.toml")
	if st, err := os.Stat(saved); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v", err)
	}
	c2, _ := cfg.Cluster("c2")
	SaveSetting(&c2.Settings, "c2", "failover-limit", "7") // written, but c2 does not read it back
	cfg = mustLoad(t, path, Options{})
	c1, _ = cfg.Cluster("c1")
	if c1.Settings.FailoverLimit != 9 || c1.Settings.Autorejoin || c1.Accepted["graphite-metrics"].Value != "true" {
		t.Errorf("saved values not read: limit %d autorejoin %v accepted %v", c1.Settings.FailoverLimit, c1.Settings.Autorejoin, c1.Accepted)
	}
	if c1.Settings.FailoverMode != "manual" {
		t.Error("a key of the configuration file lost to its saved value")
	}
	if f, sec, _ := c1.Origin("failover-limit"); f != saved || sec != "saved-c1" {
		t.Errorf("origin %s [%s]", f, sec)
	}
	if c2, _ := cfg.Cluster("c2"); c2.Settings.FailoverLimit != Defaults().FailoverLimit {
		t.Error("c2 read saved settings with monitoring-save-config off")
	}
	os.WriteFile(saved, []byte("[saved-c1]\nfailover-limit = \"x\"\n[c3]\nfailover-limit = 1\n"), 0o600)
	lines := problemsOf(t, path, Options{})
	if !hasLineContaining(lines, saved+": [c3] unexpected table in saved settings") {
		t.Errorf("problems: %v", lines)
	}
	os.WriteFile(saved, []byte("[saved-c1]\nfailover-limit = \"x\"\n"), 0o600)
	if lines := problemsOf(t, path, Options{}); !hasLineContaining(lines, saved+": [saved-c1] failover-limit: want an integer") {
		t.Errorf("problems: %v", lines)
	}
	if err := SaveSetting(&c1.Settings, "c1", "failover-limt", "1"); err == nil || !strings.Contains(err.Error(), "did you mean") {
		t.Errorf("unknown key saved: %v", err)
	}
}
