package dbproc

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/internal/realtest"
)

func TestBootstrapStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping real-mariadbd test in -short mode")
	}
	realtest.LookPath(t, MariadbdPath, "mariadb-server")
	dir := t.TempDir()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	db := DB{Dir: dir, Port: port, ServerID: 7, Args: SmallFootprint}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	accounts := []Account{
		{User: "root", Host: "localhost", Password: "pw'1\\", Grants: ""},
		{User: "root", Host: "%", Password: "pw'1\\", Grants: "ALL PRIVILEGES ON *.* WITH GRANT OPTION"},
	}
	if err := Bootstrap(ctx, db.DataDir(), SmallFootprint, accounts); err != nil {
		t.Fatal(err)
	}
	p, err := Start(ctx, db)
	for try := 0; err != nil && strings.Contains(err.Error(), "already in use") && try < 3; try++ {
		// Another test process took the port between FreePort and the bind.
		if db.Port, err = FreePort(); err == nil {
			p, err = Start(ctx, db)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	port = db.Port
	t.Cleanup(p.Kill)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", "pw'1\\", "tcp", "[::1]:"+strconv.Itoa(port)
	conn, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var id, gtid string
	if err := conn.QueryRow("SELECT @@server_id, @@gtid_binlog_pos").Scan(&id, &gtid); err != nil {
		t.Fatal(err)
	}
	if id != "7" || gtid != "" {
		t.Fatalf("server_id %s, gtid_binlog_pos %q (accounts must not be binlogged)", id, gtid)
	}
	p.Stop(30 * time.Second)
	if p.Running() {
		t.Fatal("still running after Stop")
	}
}

func TestAccountsSQLQuotes(t *testing.T) {
	got := AccountsSQL([]Account{{User: "a'b", Host: "%", Password: `x\'y`, Grants: "SELECT ON db.* WITH GRANT OPTION"}})
	want := `CREATE USER 'a''b'@'%' IDENTIFIED BY 'x\\''y';` + "\n" + `GRANT SELECT ON db.* TO 'a''b'@'%' WITH GRANT OPTION;`
	if !contains(got, want) {
		t.Fatalf("AccountsSQL:\n%s\nwant to contain\n%s", got, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
