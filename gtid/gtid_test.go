package gtid

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	l, err := Parse(" 1-2-7,\n0-1-5 ")
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[0] != (GTID{0, 1, 5}) || l[1] != (GTID{1, 2, 7}) {
		t.Fatalf("Parse = %+v", l)
	}
	if l.String() != "0-1-5,1-2-7" {
		t.Fatalf("String = %q", l.String())
	}
	if l, err := Parse(""); err != nil || len(l) != 0 || l.String() != "" {
		t.Fatalf("empty: %v %v", l, err)
	}
	big, err := Parse("4294967295-4294967295-18446744073709551615")
	if err != nil || big[0].Seq != 18446744073709551615 {
		t.Fatalf("max values: %v %v", big, err)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"0-1":                      "domain-server-sequence",
		"0-1-5-6":                  "domain-server-sequence",
		"a-1-5":                    "domain",
		"0-x-5":                    "server id",
		"0-1-y":                    "sequence",
		"0-1--5":                   "domain-server-sequence",
		"4294967296-1-5":           "domain",
		"0-1-5,0-2-9":              "appears twice",
		"0-1-5,,1-1-1":             "domain-server-sequence",
		"0-1-5;1-1-1":              "sequence",
		"-1-1-5":                   "domain-server-sequence",
		"0-1-99999999999999999999": "sequence",
	} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want mention of %q", in, err, want)
		}
	}
}

func TestCompare(t *testing.T) {
	cases := []struct {
		a, b     string
		order    Order
		contains bool // a contains b
		ahead    bool // a ahead of b
		behind   uint64
	}{
		{"0-1-5", "0-1-5", Equal, true, false, 0},
		{"0-1-6", "0-1-5", Ahead, true, true, 0},
		{"0-1-5", "0-1-6", Behind, false, false, 1},
		{"0-1-5,1-2-7", "0-1-5", Ahead, true, true, 0},
		{"0-1-5", "0-1-5,1-2-7", Behind, false, false, 7},
		{"0-1-9,1-2-3", "0-1-5,1-2-7", Diverged, false, false, 4},
		{"", "", Equal, true, false, 0},
		{"0-1-1", "", Ahead, true, true, 0},
		{"", "0-1-3", Behind, false, false, 3},
		// Same sequence written by two servers: two different transactions.
		{"0-2-5", "0-1-5", Diverged, false, false, 0},
		// A new server id at a higher sequence is normal after a failover.
		{"0-2-8", "0-1-5", Ahead, true, true, 0},
		// Sequence 0 in a domain means nothing applied there.
		{"0-1-5,3-0-0", "0-1-5", Equal, true, false, 0},
	}
	for _, c := range cases {
		a, b := MustParse(c.a), MustParse(c.b)
		if got := a.Compare(b); got != c.order {
			t.Errorf("Compare(%q, %q) = %v, want %v", c.a, c.b, got, c.order)
		}
		if got := a.Contains(b); got != c.contains {
			t.Errorf("%q.Contains(%q) = %v, want %v", c.a, c.b, got, c.contains)
		}
		if got := a.AheadOf(b); got != c.ahead {
			t.Errorf("%q.AheadOf(%q) = %v, want %v", c.a, c.b, got, c.ahead)
		}
		if got := a.Behind(b); got != c.behind {
			t.Errorf("%q.Behind(%q) = %d, want %d", c.a, c.b, got, c.behind)
		}
	}
}

func TestCompareDomain(t *testing.T) {
	a, b := MustParse("0-1-5,1-1-9"), MustParse("0-1-7,2-1-1")
	for d, want := range map[uint32]int{0: -1, 1: 1, 2: -1, 9: 0} {
		if got := a.CompareDomain(b, d); got != want {
			t.Errorf("CompareDomain domain %d = %d, want %d", d, got, want)
		}
	}
}

func TestErrant(t *testing.T) {
	cases := []struct{ replica, master, want string }{
		{"0-1-5", "0-1-5", ""},
		{"0-1-4", "0-1-5", ""},                    // simply behind
		{"0-1-6", "0-1-5", "0-1-6"},               // wrote beyond its master
		{"0-1-5,1-3-2", "0-1-5", "1-3-2"},         // wrote in a domain its master never used
		{"0-3-5", "0-1-5", "0-3-5"},               // same sequence, another writer
		{"0-1-5,1-3-2", "0-1-9,1-3-2", ""},        // all accounted for
		{"0-2-10,1-1-1", "0-1-9,1-1-4", "0-2-10"}, // one domain errant, the other fine
		{"", "0-1-5", ""},
	}
	for _, c := range cases {
		got := Errant(MustParse(c.replica), MustParse(c.master))
		if got.String() != c.want {
			t.Errorf("Errant(%q, %q) = %q, want %q", c.replica, c.master, got, c.want)
		}
	}
}

func TestDomainLookup(t *testing.T) {
	l := MustParse("5-1-1,0-1-2,3-2-9")
	if g, ok := l.Domain(3); !ok || g.Seq != 9 {
		t.Fatalf("Domain(3) = %v %v", g, ok)
	}
	if _, ok := l.Domain(4); ok {
		t.Fatal("Domain(4) found")
	}
	if d := l.Domains(); len(d) != 3 || d[0] != 0 || d[2] != 5 {
		t.Fatalf("Domains = %v", d)
	}
	if !l.Equal(MustParse("0-1-2,3-2-9,5-1-1")) || l.Equal(MustParse("0-1-2")) {
		t.Fatal("Equal")
	}
}

// FuzzParseRoundTrip: parse never panics; what parses formats back to the same position, and
// the comparison relations stay consistent with each other.
func FuzzParseRoundTrip(f *testing.F) {
	for _, s := range []string{"0-1-5", "0-1-5,1-2-7", "", " 3-3-3 ,\n1-1-1", "0-1-5,0-1-6", "a-b-c", "1-2", "0-0-0"} {
		f.Add(s, "0-1-5")
	}
	f.Fuzz(func(t *testing.T, s, o string) {
		l, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(l.String())
		if err != nil || !back.Equal(l) {
			t.Fatalf("%q -> %q -> %v (%v)", s, l.String(), back, err)
		}
		if !l.Contains(l) || l.AheadOf(l) || l.Compare(l) != Equal || len(Errant(l, l)) != 0 {
			t.Fatalf("%q not equal to itself", s)
		}
		m, err := Parse(o)
		if err != nil {
			return
		}
		switch l.Compare(m) {
		case Ahead:
			if !l.AheadOf(m) || m.Compare(l) != Behind {
				t.Fatalf("%q ahead of %q inconsistent", s, o)
			}
		case Behind:
			if m.Compare(l) != Ahead || len(Errant(l, m)) != 0 {
				t.Fatalf("%q behind %q inconsistent: errant %v", s, o, Errant(l, m))
			}
		case Equal:
			if m.Compare(l) != Equal {
				t.Fatalf("%q equal %q not symmetric", s, o)
			}
		case Diverged:
			if m.Compare(l) != Diverged {
				t.Fatalf("%q diverged %q not symmetric", s, o)
			}
		}
		if len(Errant(l, m)) == 0 && !m.Contains(l) {
			t.Fatalf("no errant GTID in %q against %q, yet %q does not contain it", s, o, o)
		}
	})
}
