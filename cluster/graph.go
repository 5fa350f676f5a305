package cluster

import (
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// graph is who replicates from whom among the configured servers, by index.
type graph struct {
	parent   []int   // configured source of each server's primary channel, -1 if none
	children [][]int // servers replicating from each server
	outside  []bool  // the server replicates from an address that is not configured
}

func buildGraph(servers []topology.Server) graph {
	g := graph{parent: make([]int, len(servers)), children: make([][]int, len(servers)), outside: make([]bool, len(servers))}
	for i := range servers {
		g.parent[i] = -1
		r, ok := servers[i].PrimaryReplication()
		if !ok {
			continue
		}
		p := sourceIndex(servers, i, r)
		if p < 0 {
			g.outside[i] = true
			continue
		}
		g.parent[i] = p
		g.children[p] = append(g.children[p], i)
	}
	return g
}

// sourceIndex finds the configured server a channel replicates from: by address first
// (comparing IPv6 literals by value, so "::1" matches "0::1"), then by the source's
// server_id, which still matches when replicas were pointed at a name and the
// configuration lists an address.
func sourceIndex(servers []topology.Server, self int, r topology.Replication) int {
	for j := range servers {
		if j != self && ipv6.SameAddr(servers[j].Addr, r.Source) {
			return j
		}
	}
	if r.SourceServerID == 0 {
		return -1
	}
	found := -1
	for j := range servers {
		if j != self && servers[j].ServerID == r.SourceServerID {
			if found >= 0 {
				return -1 // ambiguous: two servers share a server_id
			}
			found = j
		}
	}
	return found
}

// root follows sources up from i. It returns the top server and whether the walk closed a
// cycle (then the returned index is a member of the cycle).
func (g graph) root(i int) (int, bool) {
	seen := map[int]bool{}
	for {
		if seen[i] {
			return i, true
		}
		seen[i] = true
		if g.parent[i] < 0 {
			return i, false
		}
		i = g.parent[i]
	}
}

// cycle lists the members of the cycle through i.
func (g graph) cycle(i int) []int {
	out := []int{i}
	for j := g.parent[i]; j != i && j >= 0; j = g.parent[j] {
		out = append(out, j)
	}
	return out
}

// findMaster names the master and the kind of topology. The master is the server every
// replication tree leads up to; it stays the master while it is down, since its replicas
// still point to it. Several trees or cycles leave the choice to the previous master when
// it is one of the candidates, and to analysis to report.
func (g graph) findMaster(servers []topology.Server, prevMaster, promoted int) (int, topology.Kind) {
	if len(servers) == 1 {
		return 0, topology.KindActivePassive
	}
	// The server this manager promoted stays the master while it is writable and follows
	// nobody, even when replicas that could not be repointed still point to the dead one
	// (or the manager restarted half-way through the failover).
	if promoted >= 0 && servers[promoted].Reachable && !servers[promoted].ReadOnly && g.parent[promoted] < 0 {
		return promoted, topology.KindMasterSlave
	}
	roots := map[int]bool{}
	var cycleAt = -1
	for i := range servers {
		if g.parent[i] < 0 {
			continue
		}
		r, cyc := g.root(i)
		if cyc {
			cycleAt = r
			continue
		}
		roots[r] = true
	}
	if cycleAt >= 0 && len(roots) == 0 {
		members := g.cycle(cycleAt)
		if len(members) > 2 {
			return -1, topology.KindRing
		}
		// Two servers replicating from each other: the writable one is the master.
		writable := -1
		for _, m := range members {
			if servers[m].Reachable && !servers[m].ReadOnly {
				if writable >= 0 {
					return -1, topology.KindMultiMaster
				}
				writable = m
			}
		}
		if writable < 0 && prevMaster >= 0 && (prevMaster == members[0] || prevMaster == members[1]) {
			writable = prevMaster
		}
		return writable, topology.KindMultiMaster
	}
	switch len(roots) {
	case 0:
		// Nobody replicates. The master of the previous tick stays master while it answers
		// (its replicas were reset or removed); otherwise a lone writable server is the
		// master. Either way analysis reports the missing replicas.
		if prevMaster >= 0 && servers[prevMaster].Reachable {
			return prevMaster, topology.KindMasterSlave
		}
		writable := -1
		for i := range servers {
			if servers[i].Reachable && !servers[i].ReadOnly {
				if writable >= 0 {
					return -1, topology.KindUnknown
				}
				writable = i
			}
		}
		if writable >= 0 {
			return writable, topology.KindMasterSlave
		}
		return -1, topology.KindUnknown
	case 1:
		for r := range roots {
			return r, topology.KindMasterSlave
		}
	}
	if roots[prevMaster] {
		return prevMaster, topology.KindMasterSlave
	}
	return -1, topology.KindUnknown
}

func (g graph) role(i, master int, kind topology.Kind) topology.Role {
	switch {
	case i == master:
		return topology.RoleMaster
	case kind == topology.KindMultiMaster && g.parent[i] >= 0:
		return topology.RoleReplica // its "children" are the other master
	case g.parent[i] >= 0 && len(g.children[i]) > 0:
		return topology.RoleRelay
	case g.parent[i] >= 0 || g.outside[i]:
		return topology.RoleReplica
	}
	return topology.RoleStandalone
}

// depth counts the hops from server i up to the master: 0 for the master, 1 for its direct
// replicas, 2 for the replicas of a relay; 0 too when i's sources do not lead to the master.
func (g graph) depth(i, master int) int {
	if master < 0 || i == master {
		return 0
	}
	d := 0
	seen := map[int]bool{}
	for j := i; j >= 0 && !seen[j]; j = g.parent[j] {
		if j == master {
			return d
		}
		seen[j] = true
		d++
	}
	return 0
}

// ancestors lists i's sources from its own upwards, stopping before the master (or at a
// cycle, or at the top of a tree the master is not part of).
func (g graph) ancestors(i, master int) []int {
	var out []int
	seen := map[int]bool{i: true}
	for j := g.parent[i]; j >= 0 && j != master && !seen[j]; j = g.parent[j] {
		seen[j] = true
		out = append(out, j)
	}
	return out
}

// descendants counts the servers whose sources lead up to i.
func (g graph) descendants(i int) int {
	n := 0
	seen := map[int]bool{i: true}
	next := append([]int(nil), g.children[i]...)
	for len(next) > 0 {
		c := next[0]
		next = next[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		n++
		next = append(next, g.children[c]...)
	}
	return n
}
