package errlog

import (
	"strings"
	"testing"
)

// Lines as MariaDB 10.11 writes them (a start and a replication error with its statement).
const sample = `0 [Note] the end of a message cut by a partial read
2026-12-02  5:59:09 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 as process 449
2026-12-02  5:59:09 0 [Note] mariadbd: ready for connections.
Version: '10.11.19-MariaDB-0+deb12u1'  socket: '/tmp/elog/sock'  port: 0  Debian 12
2026-12-02 15:01:02 12 [ERROR] Slave SQL: Error 'Duplicate entry '1' for key 'PRIMARY'' on query. Default database: 'shop'. Query: 'INSERT INTO t VALUES (1)', Gtid 0-1-9, Internal MariaDB error code: 1062
2026-12-02 15:01:02 12 [Warning] Slave: Duplicate entry '1' for key 'PRIMARY' Error_code: 1062
`

func TestParse(t *testing.T) {
	es, err := Parse(strings.NewReader(sample), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 {
		t.Fatalf("%d entries: %+v", len(es), es)
	}
	if es[0].Time != "2026-12-02 05:59:09" || es[0].Thread != 0 || es[0].Level != "Note" || !strings.HasPrefix(es[0].Text, "Starting MariaDB") {
		t.Fatalf("first %+v", es[0])
	}
	if !strings.HasSuffix(es[1].Text, "ready for connections.\nVersion: '10.11.19-MariaDB-0+deb12u1'  socket: '/tmp/elog/sock'  port: 0  Debian 12") {
		t.Fatalf("continuation not kept: %q", es[1].Text)
	}
	if es[2].Time != "2026-12-02 15:01:02" || es[2].Thread != 12 || es[2].Level != "ERROR" || !strings.Contains(es[2].Text, "Gtid 0-1-9") {
		t.Fatalf("error %+v", es[2])
	}
	if last, _ := Parse(strings.NewReader(sample), 1); len(last) != 1 || last[0].Level != "Warning" {
		t.Fatalf("last one: %+v", last)
	}
}
