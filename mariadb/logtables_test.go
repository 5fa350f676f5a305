package mariadb

import (
	"context"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

// Log tables rotated on a real server: slow queries logged to mysql.slow_log move to a
// dated copy, the table starts empty and keeps logging, only the newest copies stay, and
// nothing reaches the binary log (each server rotates its own).
func TestRotateLogTables(t *testing.T) {
	c := testenv.StartCluster(t, 2, testenv.WithArgs("--log-output=TABLE", "--slow-query-log=1", "--long-query-time=0"))
	m := c.Master()
	s := open(t, m, false, Options{})
	ctx := context.Background()
	m.QueryString(t, "SELECT 1") // logged: long_query_time is 0
	before := m.QueryString(t, "SELECT @@gtid_binlog_pos")
	base := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 4; i++ {
		n, err := s.RotateLogTables(ctx, 2, base.Add(time.Duration(i)*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("rotation %d: %d tables, %v", i, n, err)
		}
	}
	copies := m.QueryString(t, "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA='mysql' AND TABLE_NAME LIKE 'slow\\_log\\_2%'")
	if copies != "slow_log_20261202120000,slow_log_20261202130000" {
		t.Fatalf("slow_log copies %q, want the 2 newest", copies)
	}
	m.QueryString(t, "SELECT 2")
	if got := m.QueryString(t, "SELECT COUNT(*) > 0 FROM mysql.slow_log"); got != "1" {
		t.Fatal("the fresh slow_log does not log")
	}
	if after := m.QueryString(t, "SELECT @@gtid_binlog_pos"); after != before {
		t.Fatalf("rotation wrote to the binary log: %s -> %s", before, after)
	}
}
