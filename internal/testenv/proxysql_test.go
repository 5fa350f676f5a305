package testenv

import (
	"context"
	"database/sql"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/proxysql"
)

// TestProxySQLAsSlapOSStartsIt runs the real proxysql on a cnf from proxysql.GenerateConfig,
// as SlapOS does (-f -c FILE -D DIR): clients reach a MariaDB server through it over
// 127.0.0.1 and [::1]; the admin password is in the cnf, not on the command line; a kill
// and restart keep the database (proxysql.db) and the helper cleans up after itself.
func TestProxySQLAsSlapOSStartsIt(t *testing.T) {
	c := StartCluster(t, 1, Standalone())
	srv := c.Master()
	p := NewProxySQL(t)
	cnf, err := proxysql.GenerateConfig(proxysql.ConfigParams{
		Datadir: p.Datadir, AdminUser: p.AdminUser, AdminPassword: p.AdminPassword,
		AdminPort: p.AdminPort, Port: p.Port, BindIPv4: "127.0.0.1", BindIPv6: "::1",
		MonitorUser: RootUser, MonitorPassword: RootPassword,
		Users:      []proxysql.User{{Username: RootUser, Password: RootPassword}},
		Hostgroups: proxysql.Hostgroups{Writer: 10, Reader: 20, Offline: proxysql.DefaultOfflineHostgroup},
		Servers:    []ipv6.HostPort{{Host: srv.Host(), Port: srv.Port()}},
		Weight:     100, MaxConnections: 100, Threads: 1,
		Tags: []string{proxysql.TagMasterSlave},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(cnf)

	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if strings.Join(args[1:], " ") != "-f -c "+p.ConfigPath+" -D "+p.Datadir {
		t.Errorf("proxysql arguments %q, want -f -c %s -D %s", args[1:], p.ConfigPath, p.Datadir)
	}
	if strings.Contains(string(cmdline), p.AdminPassword) {
		t.Error("the admin password is on proxysql's command line")
	}
	if st, err := os.Stat(p.ConfigPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("proxysql.cnf mode: %v %v, want 0600", st.Mode().Perm(), err)
	}

	// The monitor finds the writable server and makes it a writer: traffic flows over both
	// families (the one user's default hostgroup is the writer).
	through := func(v6 bool) (int, error) {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = RootUser, RootPassword, "tcp", p.Addr(v6)
		cfg.Timeout, cfg.ReadTimeout = 2*time.Second, 2*time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return 0, err
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var id int
		err = db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
		return id, err
	}
	for _, v6 := range []bool{false, true} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			id, err := through(v6)
			if err == nil && id == srv.ServerID() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("query through proxysql at %s: server_id %d, %v\n%s", p.Addr(v6), id, err, p.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	admin := p.AdminDB(t, true)
	if _, err := admin.Exec("UPDATE mysql_servers SET weight = 7"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("SAVE MYSQL SERVERS TO DISK"); err != nil {
		t.Fatal(err)
	}
	p.Restart()
	var w int
	if err := p.AdminDB(t, false).QueryRow("SELECT weight FROM runtime_mysql_servers").Scan(&w); err != nil || w != 7 {
		t.Fatalf("after a restart without --reload: weight %d, %v; want the saved 7", w, err)
	}
	p.Kill()
	if p.Running() {
		t.Fatal("proxysql still running after Kill")
	}
	if c, err := net.DialTimeout("tcp", p.AdminAddr(false), 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("admin port still open after Kill")
	}
}

func TestProxySQLPathFromEnv(t *testing.T) {
	t.Setenv("PROXYSQL_BIN", "/nonexistent/proxysql")
	if _, err := ProxySQLPath(); err == nil || !strings.Contains(err.Error(), "PROXYSQL_BIN=/nonexistent/proxysql") {
		t.Fatalf("ProxySQLPath with a bad PROXYSQL_BIN: %v", err)
	}
}
