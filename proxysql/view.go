package proxysql

import (
	"context"
	"sort"
	"strconv"
	"time"

	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

var _ router.Viewer = (*Router)(nil)

// View implements router.Viewer: runtime_mysql_servers read now (one SELECT on the admin
// connection, bounded by ctx and the admin call timeout; the caller caches it), and the
// routing intent the router derives from s. The rows of hostgroups other than the
// cluster's writer, reader and offline ones are left out.
func (r *Router) View(ctx context.Context, s *topology.Snapshot) router.View {
	r.mu.Lock()
	in := router.IntentFor(s, r.intentOptions())
	r.mu.Unlock()
	h := r.opt.Hostgroups
	v := router.View{Name: r.Name(), Kind: "proxysql", Intent: in, Groups: []router.Group{
		{Name: strconv.Itoa(h.Writer), Role: "write"}, {Name: strconv.Itoa(h.Reader), Role: "read"}, {Name: strconv.Itoa(h.Offline), Role: "offline"},
	}}
	rows, err := r.admin.RuntimeServers(ctx)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.ReadAt = time.Now()
	for _, row := range rows {
		if !h.owns(row.Hostgroup) {
			continue
		}
		v.Backends = append(v.Backends, router.Backend{Group: strconv.Itoa(row.Hostgroup), Server: row.Addr().String(), State: string(row.Status)})
	}
	rank := map[int]int{h.Writer: 0, h.Reader: 1, h.Offline: 2}
	sort.SliceStable(v.Backends, func(i, j int) bool {
		a, _ := strconv.Atoi(v.Backends[i].Group)
		b, _ := strconv.Atoi(v.Backends[j].Group)
		if a != b {
			return rank[a] < rank[b]
		}
		return v.Backends[i].Server < v.Backends[j].Server
	})
	return v
}
