package proxysql

import (
	"fmt"
	"testing"

	"replication-manager-pro/proxysql/proxysqltest"
	"replication-manager-pro/router"
)

// TestRouterViewAgainstDouble: the view lists runtime_mysql_servers of the cluster's
// hostgroups (writer first) and the intent the router derives, on the test double of
// ProxySQL's admin interface.
func TestRouterViewAgainstDouble(t *testing.T) {
	d := startDouble(t, proxysqltest.Options{})
	r := newRouter(t, d, nil)
	if err := r.Bootstrap(ctx(t), snapA()); err != nil {
		t.Fatal(err)
	}
	v := r.View(ctx(t), snapA())
	if v.Error != "" || v.ReadAt.IsZero() || v.Kind != "proxysql" {
		t.Fatalf("view %+v", v)
	}
	var got []string
	for _, b := range v.Backends {
		got = append(got, fmt.Sprintf("%s %s %s", b.Group, b.Server, b.State))
	}
	same(t, "backends", got, []string{"0 10.0.0.1:3306 ONLINE", "1 10.0.0.3:3306 ONLINE", "1 [2001:db8::2]:3306 ONLINE", "666 10.0.0.4:3306 OFFLINE_SOFT"})
	if len(v.Groups) != 3 || v.Groups[0].Role != "write" || v.Groups[2].Name != "666" {
		t.Errorf("groups %+v", v.Groups)
	}
	if m, ok := v.Intent.MasterIntent(); !ok || m.Route != router.Writer || v.Intent.Servers[3].Route != router.Offline {
		t.Errorf("intent %+v", v.Intent)
	}
	// An admin interface that is gone: the error, no rows.
	d.Close()
	if v := r.View(ctx(t), snapA()); v.Error == "" || len(v.Backends) != 0 {
		t.Errorf("view of a closed admin interface: %+v", v)
	}
}
