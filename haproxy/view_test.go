package haproxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

// TestRouterView: the slots the router believes HAProxy runs, named by address, write
// backend first, and the intent; no slot known yet says so.
func TestRouterView(t *testing.T) {
	a, b := ipv6.HostPort{Host: "127.0.0.1", Port: 3306}, ipv6.HostPort{Host: "::1", Port: 3307}
	snap := &topology.Snapshot{Master: 0, Servers: []topology.Server{
		{Addr: a, State: topology.StateMaster, Reachable: true},
		{Addr: b, State: topology.StateSlave, Reachable: true, Replications: []topology.Replication{{Source: a, IO: topology.ThreadYes, SQL: topology.ThreadYes}}},
	}}
	lay := Layout{WriteBackend: "w", ReadBackend: "r"}
	r := &Router{name: "haproxy test", layout: lay, maint: map[ipv6.HostPort]bool{}, applied: map[Slot]AdminState{}}
	if v := r.View(context.Background(), snap); v.Error == "" || len(v.Backends) != 0 {
		t.Fatalf("nothing read yet: %+v", v)
	}
	r.known = map[Slot]bool{{"w", SlotName(a)}: true, {"w", SlotName(b)}: true, {"r", SlotName(a)}: true, {"r", SlotName(b)}: true}
	r.applied = map[Slot]AdminState{{"w", SlotName(a)}: Ready, {"w", SlotName(b)}: Maint, {"r", SlotName(a)}: Maint, {"r", SlotName(b)}: Ready}
	r.synced = time.Now()
	v := r.View(context.Background(), snap)
	var got []string
	for _, x := range v.Backends {
		got = append(got, fmt.Sprintf("%s %s %s", x.Group, x.Server, x.State))
	}
	want := []string{"w 127.0.0.1:3306 ready", "w [::1]:3307 maint", "r 127.0.0.1:3306 maint", "r [::1]:3307 ready"}
	if fmt.Sprint(got) != fmt.Sprint(want) || v.Error != "" || v.ReadAt.IsZero() {
		t.Errorf("backends %q (error %q), want %q", got, v.Error, want)
	}
	if v.Intent.Servers[0].Route != router.Writer || v.Intent.Servers[1].Route != router.Reader {
		t.Errorf("intent %+v", v.Intent)
	}
}
