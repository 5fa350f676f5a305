package api

import (
	"container/list"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Login guard: failed logins are counted per (client address, user), per client address
// and per user, each within loginWindow of the first failure:
//
//   - maxPairFailures failures of one user from one address lock that pair out;
//   - maxAddrFailures failures from one address, whatever the users, lock the address out;
//   - maxUserFailures failures of one user from anywhere put the user under attack: from
//     then on only addresses without a failure for that user may try it. The real admin at
//     another address is never locked out by someone else's failures.
//
// An address is an IPv4 address or an IPv6 /64 (one host's share of a network). The guard
// keeps no name: each key is a 64-bit keyed hash of the address and the user, and each of
// the three tables is a fixed-size LRU (guardCapacity entries), so random user names or a
// flood of addresses cost bounded memory; a success forgets the pair's failures.
const (
	maxPairFailures = 3
	maxAddrFailures = 20
	maxUserFailures = 50
	loginWindow     = 3 * time.Minute
	guardCapacity   = 4096
)

type loginGuard struct {
	now  func() time.Time
	seed maphash.Seed

	mu                  sync.Mutex
	pairs, addrs, users *lruCounter
}

func newLoginGuard(now func() time.Time) *loginGuard {
	return &loginGuard{now: now, seed: maphash.MakeSeed(),
		pairs: newLRUCounter(guardCapacity), addrs: newLRUCounter(guardCapacity), users: newLRUCounter(guardCapacity)}
}

// guardKeys are the hashed keys of one attempt.
type guardKeys struct{ pair, addr, user uint64 }

func (g *loginGuard) keys(addr, user string) guardKeys {
	var h maphash.Hash
	h.SetSeed(g.seed)
	hash := func(parts ...string) uint64 {
		h.Reset()
		for _, p := range parts {
			h.WriteString(p)
			h.WriteByte(0)
		}
		return h.Sum64()
	}
	return guardKeys{pair: hash("p", addr, user), addr: hash("a", addr), user: hash("u", user)}
}

// verdict tells whether an attempt may be checked; when not, until when and which limit.
type verdict struct {
	blocked bool
	until   time.Time
	limit   string // "address", "user and address", "user under attack"
	first   bool   // the first refusal of this entry (log it once)
}

// check tells whether an attempt of user from addr may have its password checked.
func (g *loginGuard) check(addr, user string) verdict {
	k := g.keys(addr, user)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.addrs.live(k.addr, now); e != nil && e.count >= maxAddrFailures {
		return refuse(e, "address")
	}
	pair := g.pairs.live(k.pair, now)
	if pair != nil && pair.count >= maxPairFailures {
		return refuse(pair, "user and address")
	}
	if u := g.users.live(k.user, now); u != nil && u.count >= maxUserFailures && pair != nil && pair.count > 0 {
		return refuse(u, "user under attack")
	}
	return verdict{}
}

func refuse(e *guardEntry, limit string) verdict {
	first := !e.refused
	e.refused = true
	return verdict{blocked: true, until: e.first.Add(loginWindow), limit: limit, first: first}
}

// failed counts a failed attempt.
func (g *loginGuard) failed(addr, user string) {
	k := g.keys(addr, user)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pairs.add(k.pair, now)
	g.addrs.add(k.addr, now)
	g.users.add(k.user, now)
}

// succeeded forgets the failures of the pair (not those of the address or of the user:
// a valid account must not buy an address more guesses at another).
func (g *loginGuard) succeeded(addr, user string) {
	k := g.keys(addr, user)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pairs.remove(k.pair)
}

// size returns the number of entries held (for tests and metrics).
func (g *loginGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pairs.len() + g.addrs.len() + g.users.len()
}

// clientAddr is the address a login is counted against: the peer's IPv4 address or IPv6
// /64 (no proxy header is trusted: they are the client's to forge).
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.WithZone("").Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// lruCounter is a fixed-capacity map of failure counters, least recently failed evicted.
type lruCounter struct {
	capacity int
	m        map[uint64]*list.Element
	order    *list.List // front: most recent
}

type guardEntry struct {
	key     uint64
	count   int
	first   time.Time
	refused bool
}

func newLRUCounter(capacity int) *lruCounter {
	return &lruCounter{capacity: capacity, m: make(map[uint64]*list.Element, capacity), order: list.New()}
}

// live returns the entry of key when its window is not over (an expired one is removed).
func (c *lruCounter) live(key uint64, now time.Time) *guardEntry {
	el, ok := c.m[key]
	if !ok {
		return nil
	}
	e := el.Value.(*guardEntry)
	if now.Sub(e.first) >= loginWindow {
		c.order.Remove(el)
		delete(c.m, key)
		return nil
	}
	return e
}

func (c *lruCounter) add(key uint64, now time.Time) {
	e := c.live(key, now)
	if e != nil {
		e.count++
		c.order.MoveToFront(c.m[key])
		return
	}
	if len(c.m) >= c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.m, oldest.Value.(*guardEntry).key)
	}
	c.m[key] = c.order.PushFront(&guardEntry{key: key, count: 1, first: now})
}

func (c *lruCounter) remove(key uint64) {
	if el, ok := c.m[key]; ok {
		c.order.Remove(el)
		delete(c.m, key)
	}
}

func (c *lruCounter) len() int { return len(c.m) }
