package configurator

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/ipv6"
)

// These tests run Debian's mariadbd on generated bundles: option parsing of every
// fragment (--help --verbose validates each option and value) and a real start.

const (
	slaposTags  = "gtidstrict,bind,pkg,innodb,noquerycache,slow,pfs,linux,readonly,diskmonitor,sqlerror,compressbinlog,bm4ci,mroonga,utctime,readcommitted,nohandshake,ssl"
	defaultTags = "semisync,row,innodb,noquerycache,threadpool,slow,pfs,docker,linux,readonly,diskmonitor,sqlerror,compressbinlog"
	testRootPW  = "cfg-root-pw#;\"x"
)

func mariadbdPath() string {
	if p := os.Getenv("RMP_MARIADBD"); p != "" {
		return p
	}
	return "/usr/sbin/mariadbd"
}

func requireMariaDB(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping real-mariadbd test in -short mode")
	}
	realtest.LookPath(t, mariadbdPath(), "mariadb-server")
}

// pluginDir asks mariadbd where its plugins are.
func pluginDir(t *testing.T) string {
	out, err := exec.Command(mariadbdPath(), "--no-defaults", "--user=root", "--help", "--verbose").Output()
	if err != nil {
		t.Fatalf("mariadbd --help: %v", err)
	}
	m := regexp.MustCompile(`(?m)^plugin-dir\s+(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatal("mariadbd --help: no plugin-dir")
	}
	return string(m[1])
}

// installedOnly drops the tags whose plugin library is absent, logging them: their
// fragments load the plugin with plugin_load_add, which only logs an error when the
// library is missing, so the absent ones are left out to keep the error log clean.
func installedOnly(t *testing.T, tags []string) []string {
	dir := pluginDir(t)
	var out []string
	for _, n := range tags {
		tg, ok := Lookup(n)
		if ok && tg.Plugin != "" {
			if _, err := os.Stat(filepath.Join(dir, tg.Plugin+".so")); err != nil {
				t.Logf("tag %s left out: plugin %s.so not installed in %s", n, tg.Plugin, dir)
				continue
			}
		}
		out = append(out, n)
	}
	return out
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testTLS makes a CA and a server certificate for 127.0.0.1.
func testTLS(t *testing.T) *TLSFiles {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cfg-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	p := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	return &TLSFiles{CA: p("CERTIFICATE", caDER), ServerCert: p("CERTIFICATE", srvDER), ServerKey: p("EC PRIVATE KEY", keyDER),
		ClientCert: p("CERTIFICATE", srvDER), ClientKey: p("EC PRIVATE KEY", keyDER)}
}

// slaposPartition generates the bundle of a SlapOS-shaped server and unpacks it into a
// fresh partition: etc/ in the partition, data/ in <partition>/var/lib/mysql.
func slaposPartition(t *testing.T, tags []string, port int) (string, Params) {
	t.Helper()
	part := t.TempDir()
	p := Params{
		Cluster: "cluster1", Server: ipv6.HostPort{Host: "127.0.0.1", Port: port},
		Orchestrator: OrchestratorSlapOS, Partition: part, Tags: tags, Resources: DefaultResources(),
		User: "root", Password: testRootPW, TLS: testTLS(t), Version: "test",
	}
	b, err := Bundle(p)
	if err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	if err := Unpack(bytes.NewReader(b), part, filepath.Join(part, "var", "lib", "mysql")); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	return part, p
}

// benign are stderr lines of mariadbd that do not reflect on the configuration.
// (mysql.plugin is absent before the datadir is initialised; logtotable with general
// says the general log file is unused; SphinxSE is of gamma maturity.)
var benign = regexp.MustCompile(`max_open_files|Changed limits|mysql\.plugin|log tables are used|maturity level gamma`)

func checkHelp(t *testing.T, myCnf string) {
	t.Helper()
	cmd := exec.Command(mariadbdPath(), "--defaults-file="+myCnf, "--user=root", "--help", "--verbose")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mariadbd --help --verbose with %s: %v\n%s", myCnf, err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if !strings.Contains(l, "[ERROR]") && !strings.Contains(l, "[Warning]") || benign.MatchString(l) {
			continue
		}
		t.Errorf("mariadbd complained about the configuration: %s", l)
	}
}

// TestEveryFragmentIsValidForMariaDB activates every supported tag whose plugin is
// installed (round k takes the k-th tag of each exclusive group) and has mariadbd validate
// the result: exit 0 and no error or warning about the configuration.
func TestEveryFragmentIsValidForMariaDB(t *testing.T) {
	requireMariaDB(t)
	excl := map[string]int{}
	for _, g := range exclusive {
		for i, n := range g {
			excl[n] = i
		}
	}
	// log_warnings=0 would hide the warnings this test looks for: nowarnings goes with
	// the second round.
	excl["nowarnings"] = 1
	for round := 0; round < 4; round++ {
		var tags []string
		for _, tg := range Catalogue() {
			i, inGroup := excl[tg.Name]
			if tg.Unsupported != "" || (inGroup && i != round) || (!inGroup && round > 0) {
				continue
			}
			tags = append(tags, tg.Name)
		}
		tags = installedOnly(t, tags)
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			part, _ := slaposPartition(t, tags, 3306)
			checkHelp(t, filepath.Join(part, "etc", "mysql", "my.cnf"))
		})
	}
}

// TestBundleStartsMariaDB starts mariadbd on the bundle of a SlapOS-shaped server, for the
// SlapOS tag list and for the default prov-db-tags, with prov-db-memory 256, and checks
// that the generated values are in force.
func TestBundleStartsMariaDB(t *testing.T) {
	requireMariaDB(t)
	client := realtest.LookPath(t, "mariadb", "mariadb-client")
	for name, list := range map[string]string{"slapos": slaposTags, "default": defaultTags} {
		t.Run(name, func(t *testing.T) {
			tags := installedOnly(t, strings.Split(list, ","))
			port := freePort(t)
			part, p := slaposPartition(t, tags, port)
			myCnf := filepath.Join(part, "etc", "mysql", "my.cnf")
			checkHelp(t, myCnf)
			bootstrapDatadir(t, myCnf)
			db, err := sql.Open("mysql", fmt.Sprintf("root:%s@tcp(127.0.0.1:%d)/?timeout=2s", testRootPW, port))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stop := startServer(t, myCnf, db)
			defer stop()
			set, _ := ParseTags(tags)
			v, err := VarsFor(p)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"server_id":               fmt.Sprint(v.ServerID),
				"port":                    fmt.Sprint(port),
				"innodb_buffer_pool_size": fmt.Sprint(v.S.BufferPoolMB << 20),
				"innodb_log_file_size":    fmt.Sprint(v.S.LogFileMB << 20),
				"max_connections":         "1000",
				"read_only":               "1",
				"query_cache_type":        "OFF",
				"datadir":                 filepath.Join(part, "var", "lib", "mysql") + "/",
				"socket":                  filepath.Join(part, "var", "mysqld.sock"),
				"log_bin_compress":        "1",
				"performance_schema":      "1",
			}
			if set.Has("bind") {
				want["bind_address"] = "127.0.0.1"
			}
			if set.Has("gtidstrict") {
				want["gtid_strict_mode"] = "1"
			}
			if set.Has("ssl") {
				want["have_ssl"] = "YES"
			}
			if set.Has("threadpool") {
				want["thread_handling"] = "pool-of-threads"
			}
			if set.Has("semisync") {
				want["rpl_semi_sync_master_enabled"] = "1"
			}
			if set.Has("row") {
				want["binlog_format"] = "ROW"
			}
			if set.Has("readcommitted") {
				want["tx_isolation"] = "READ-COMMITTED"
			}
			if set.Has("utctime") {
				want["time_zone"] = "+00:00"
			}
			if set.Has("bm4ci") {
				want["character_set_server"] = "utf8mb4"
			}
			for k, w := range want {
				var got string
				if err := db.QueryRow("SELECT @@GLOBAL." + k).Scan(&got); err != nil {
					t.Errorf("@@%s: %v", k, err)
				} else if got != w {
					t.Errorf("@@%s = %q, want %q", k, got, w)
				}
			}
			for _, plugin := range []string{"DISKS", "SQL_ERROR_LOG"} {
				var status string
				if err := db.QueryRow("SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME=?", plugin).Scan(&status); err != nil || status != "ACTIVE" {
					t.Errorf("plugin %s: status %q, %v", plugin, status, err)
				}
			}
			// dbjob.cnf: the job runner's login through the socket.
			out, err := exec.Command(client, "--defaults-file="+filepath.Join(part, "etc", "mysql", "dbjob.cnf"), "-N", "-e", "SELECT 42").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "42" {
				t.Errorf("mariadb --defaults-file=dbjob.cnf: %v: %s", err, out)
			}
			errLog, _ := os.ReadFile(filepath.Join(part, "var", "lib", "mysql", ".system", "logs", "error.log"))
			for _, l := range strings.Split(string(errLog), "\n") {
				if strings.Contains(l, "[ERROR]") {
					t.Errorf("error log: %s", l)
				}
			}
		})
	}
}

func bootstrapDatadir(t *testing.T, myCnf string) {
	t.Helper()
	share := os.Getenv("RMP_MARIADB_SHARE")
	if share == "" {
		share = "/usr/share/mysql"
	}
	var sqlText bytes.Buffer
	sqlText.WriteString("CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n")
	for _, s := range []string{"mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"} {
		b, err := os.ReadFile(filepath.Join(share, s))
		if err != nil {
			realtest.Missing(t, "system tables script %s: %v; install Debian's mariadb-server (or set RMP_MARIADB_SHARE)", s, err)
		}
		sqlText.Write(b)
		sqlText.WriteString("\n")
	}
	pw := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(testRootPW)
	fmt.Fprintf(&sqlText, "FLUSH PRIVILEGES;\nDELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host<>'localhost');\nFLUSH PRIVILEGES;\n"+
		"ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\nCREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '%s';\n"+
		"GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n", pw, pw)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mariadbdPath(), "--defaults-file="+myCnf, "--user=root", "--bootstrap", "--skip-log-bin", "--log-error=")
	cmd.Stdin = &sqlText
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("[ERROR]")) {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
}

// startServer runs mariadbd on myCnf, waits until db answers, and returns a function
// that stops the server (SIGTERM, then SIGKILL after a minute).
func startServer(t *testing.T, myCnf string, db *sql.DB) func() {
	t.Helper()
	cmd := exec.Command(mariadbdPath(), "--defaults-file="+myCnf, "--user=root")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = db.Ping(); err == nil {
			return stop
		}
		select {
		case werr := <-done:
			done <- werr
			t.Fatalf("mariadbd exited: %v\n%s", werr, out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	t.Fatalf("mariadbd did not answer: %v", err)
	return nil
}
