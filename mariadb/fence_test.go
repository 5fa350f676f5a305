package mariadb

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
)

// An armed fence on a server that answers ends its client connections, sets read_only and
// spares replication's threads (armed here on a replica to have some).
func TestFenceEndsClientsAndSparesReplication(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	r := c.Replicas()[0]
	r.Exec(t, "SET GLOBAL read_only = OFF")
	srv, err := Open(ipv6.HostPort{Host: r.Host(), Port: r.Port()}, testenv.RootUser, testenv.RootPassword, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := srv.OpenFence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := r.DB(t)
	var clients []*sql.Conn
	for range 3 {
		client, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		if err := client.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, client)
	}
	answered, err := f.Arm(ctx, 5*time.Second)
	if err != nil || !answered {
		t.Fatalf("arm on a live server: answered=%v err=%v", answered, err)
	}
	if ro := r.QueryString(t, "SELECT @@GLOBAL.read_only"); ro != "1" {
		t.Fatalf("read_only = %s after the fence", ro)
	}
	for i, client := range clients {
		var one int
		if err := client.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil {
			t.Fatalf("client connection %d survived the fence", i)
		}
	}
	st := r.SlaveStatus(t)
	if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
		t.Fatalf("replication hit by the fence: io=%s sql=%s", st["Slave_IO_Running"], st["Slave_SQL_Running"])
	}
}
