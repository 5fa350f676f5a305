// Package gtid reads and compares MariaDB global transaction ids.
//
// A MariaDB GTID is domain-server-sequence ("0-1-5"). Positions such as gtid_current_pos,
// gtid_slave_pos or a replica's Gtid_IO_Pos hold at most one GTID per replication domain:
// the last transaction applied in that domain. Within a domain, sequence numbers grow
// monotonically (strictly so under gtid_strict_mode), so comparing positions is comparing
// sequence numbers domain by domain; the server id tells who wrote a transaction and lets us
// see two servers that wrote different transactions under the same sequence number.
package gtid

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// GTID is one MariaDB global transaction id.
type GTID struct {
	Domain   uint32
	ServerID uint32
	Seq      uint64
}

func (g GTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" + strconv.FormatUint(uint64(g.ServerID), 10) + "-" + strconv.FormatUint(g.Seq, 10)
}

// List is a GTID position: sorted by domain, at most one GTID per domain. The zero value is
// the empty position (nothing applied).
type List []GTID

// ParseGTID reads one "domain-server-seq" triplet.
func ParseGTID(s string) (GTID, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return GTID{}, fmt.Errorf("gtid %q: want domain-server-sequence", s)
	}
	d, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil {
		return GTID{}, fmt.Errorf("gtid %q: domain %q is not a 32-bit unsigned number", s, parts[0])
	}
	sid, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return GTID{}, fmt.Errorf("gtid %q: server id %q is not a 32-bit unsigned number", s, parts[1])
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return GTID{}, fmt.Errorf("gtid %q: sequence %q is not a 64-bit unsigned number", s, parts[2])
	}
	return GTID{Domain: uint32(d), ServerID: uint32(sid), Seq: seq}, nil
}

// Parse reads a position such as "0-1-5,1-2-7". Whitespace and newlines around entries are
// ignored (SHOW SLAVE STATUS folds long lists); "" is the empty position. A domain that
// appears twice is an error: a position has one GTID per domain.
func Parse(s string) (List, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return List{}, nil
	}
	parts := strings.Split(s, ",")
	l := make(List, 0, len(parts))
	for _, p := range parts {
		g, err := ParseGTID(p)
		if err != nil {
			return nil, err
		}
		l = append(l, g)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Domain < l[j].Domain })
	for i := 1; i < len(l); i++ {
		if l[i].Domain == l[i-1].Domain {
			return nil, fmt.Errorf("gtid position %q: domain %d appears twice", s, l[i].Domain)
		}
	}
	return l, nil
}

// MustParse is Parse for constants in tests and tables; it panics on bad input.
func MustParse(s string) List {
	l, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return l
}

// String formats the position as MariaDB does: "0-1-5,1-2-7".
func (l List) String() string {
	var b strings.Builder
	for i, g := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g.String())
	}
	return b.String()
}

// Domain returns the GTID of one domain, if the position has it.
func (l List) Domain(d uint32) (GTID, bool) {
	i := sort.Search(len(l), func(i int) bool { return l[i].Domain >= d })
	if i < len(l) && l[i].Domain == d {
		return l[i], true
	}
	return GTID{}, false
}

// Domains lists the domains of the position, ascending.
func (l List) Domains() []uint32 {
	out := make([]uint32, len(l))
	for i, g := range l {
		out[i] = g.Domain
	}
	return out
}

// Equal reports whether both positions hold the same GTIDs.
func (l List) Equal(o List) bool {
	if len(l) != len(o) {
		return false
	}
	for i := range l {
		if l[i] != o[i] {
			return false
		}
	}
	return true
}

// CompareDomain compares the sequence numbers of one domain: -1 if l is behind o, 0 if
// equal, +1 if ahead. A missing domain counts as sequence 0 (nothing applied).
func (l List) CompareDomain(o List, d uint32) int {
	a, _ := l.Domain(d)
	b, _ := o.Domain(d)
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// Contains reports whether every transaction position o has reached, l has reached too:
// in each domain of o, l's sequence is at least o's. When both stand at the same sequence
// the server ids must match too: the same number written by two servers is two different
// transactions, so neither contains the other.
func (l List) Contains(o List) bool {
	for _, g := range o {
		if g.Seq == 0 {
			continue // nothing applied in that domain
		}
		mine, ok := l.Domain(g.Domain)
		if !ok {
			return false
		}
		if mine.Seq < g.Seq || (mine.Seq == g.Seq && mine.ServerID != g.ServerID) {
			return false
		}
	}
	return true
}

// AheadOf reports whether l contains o and has more: l has applied everything o has and at
// least one transaction o lacks.
func (l List) AheadOf(o List) bool {
	return l.Contains(o) && !o.Contains(l)
}

// Order is how two positions relate.
type Order int

const (
	Equal    Order = iota // same transactions
	Ahead                 // the first contains the second and has more
	Behind                // the second contains the first and has more
	Diverged              // each has something the other lacks
)

func (o Order) String() string {
	switch o {
	case Equal:
		return "equal"
	case Ahead:
		return "ahead"
	case Behind:
		return "behind"
	}
	return "diverged"
}

// Compare tells how l relates to o.
func (l List) Compare(o List) Order {
	lc, oc := l.Contains(o), o.Contains(l)
	switch {
	case lc && oc:
		return Equal
	case lc:
		return Ahead
	case oc:
		return Behind
	}
	return Diverged
}

// Behind counts, over all domains, how many sequence numbers l must still apply to reach o.
// Domains where l is ahead count for nothing. It is a lag in transactions, used to rank
// replicas; it does not detect divergence (use Compare or Errant for that).
func (l List) Behind(o List) uint64 {
	var n uint64
	for _, g := range o {
		mine, _ := l.Domain(g.Domain)
		if g.Seq > mine.Seq {
			n += g.Seq - mine.Seq
		}
	}
	return n
}

// Errant returns the replica's GTIDs that its master's position does not account for:
// domains the master never wrote in, sequences beyond the master's, or the master's own
// sequence number carrying another server's id. Such transactions were written on the
// replica directly (or on a diverged old master); promoting that replica would publish them,
// and repointing it would break with a duplicate or a gap. An empty result means none.
//
// Positions only show each domain's last GTID, so a replica that wrote locally and then fell
// behind its master in that domain is not caught here; comparing gtid_binlog_state catches it.
func Errant(replica, master List) List {
	var out List
	for _, g := range replica {
		if g.Seq == 0 {
			continue
		}
		m, ok := master.Domain(g.Domain)
		switch {
		case !ok:
			out = append(out, g)
		case ok && (g.Seq > m.Seq || (g.Seq == m.Seq && g.ServerID != m.ServerID)):
			out = append(out, g)
		}
	}
	return out
}

// MarshalText writes the MariaDB form, so JSON shows "0-1-5,1-2-7".
func (l List) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads the MariaDB form.
func (l *List) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*l = p
	return nil
}
