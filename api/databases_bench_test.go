package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/proxysql/proxysqltest"
	"replication-manager-pro/tenant"
	"replication-manager-pro/topology"
)

// BenchmarkPutDatabases100 times PUT /api/clusters/{c}/databases with 100 tenants on a
// real 3-node cluster, each tenant's users synced into a ProxySQL (the admin-interface
// double): from none to 100 in one call, then the same list again (nothing to do), then
// the empty list (all removed).
//
//	go test -run '^$' -bench BenchmarkPutDatabases100 -benchtime 3x ./api
func BenchmarkPutDatabases100(b *testing.B) {
	c := testenv.StartCluster(b, 3)
	d, err := proxysqltest.Start(proxysqltest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	dir := b.TempDir()
	extra := fmt.Sprintf("proxysql = true\nproxysql-servers = %q\nproxysql-user = \"admin\"\nproxysql-password = \"admin\"\nproxysql-port = 7032\n", d.Addr().String())
	path := writeConfig(b, dir, "", clusterDef{name: "c1", hosts: []string{c.Servers[0].Addr(), c.Servers[1].Addr(), c.Servers[2].Addr()},
		extra: fmt.Sprintf("db-servers-credential = \"%s:%s\"\nreplication-credential = \"%s:%s\"\n%s", testenv.RootUser, testenv.RootPassword, testenv.ReplUser, testenv.ReplPassword, extra)})
	e := newEnv(b, dir, path, nil)
	waitFor(b, "a master", func() bool {
		m, _ := e.fleet.Get("c1")
		s := m.Monitor.Snapshot()
		return s != nil && len(s.Servers) == 3 && s.Servers[0].State == topology.StateMaster
	})
	tok := e.login("admin", apiPassword)
	var list []string
	for i := 0; i < 100; i++ {
		list = append(list, fmt.Sprintf(`{"reference": "SOFTINST-%d"}`, 1000+i))
	}
	full := `{"databases": [` + strings.Join(list, ",") + `]}`
	put := func(body string) tenant.Result {
		r := e.do("PUT", "/api/clusters/c1/databases", tok, strings.NewReader(body))
		if r.code != 200 {
			b.Fatalf("PUT: %d %.300s", r.code, r.body)
		}
		var a struct{ Result tenant.Result }
		if err := json.Unmarshal([]byte(r.body), &a); err != nil {
			b.Fatal(err)
		}
		return a.Result
	}
	var create, repeat, remove time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if res := put(full); len(res.Created) != 100 {
			b.Fatalf("created %d", len(res.Created))
		}
		t1 := time.Now()
		before := c.Master().QueryString(b, "SELECT @@gtid_binlog_pos")
		if res := put(full); res.Changed() || len(res.Unchanged) != 100 {
			b.Fatalf("repeat changed: %+v", res)
		}
		t2 := time.Now()
		if after := c.Master().QueryString(b, "SELECT @@gtid_binlog_pos"); after != before {
			b.Fatalf("repeated PUT wrote to the binary log")
		}
		if res := put(`{"databases": []}`); len(res.Removed) != 100 {
			b.Fatalf("removed %d", len(res.Removed))
		}
		t3 := time.Now()
		create += t1.Sub(t0)
		repeat += t2.Sub(t1)
		remove += t3.Sub(t2)
	}
	b.StopTimer()
	c.WaitSync(b)
	n := float64(b.N)
	b.ReportMetric(float64(create.Milliseconds())/n, "ms/create-100")
	b.ReportMetric(float64(repeat.Milliseconds())/n, "ms/repeat-100")
	b.ReportMetric(float64(remove.Milliseconds())/n, "ms/remove-100")
}
