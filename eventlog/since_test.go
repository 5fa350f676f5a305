package eventlog

import (
	"fmt"
	"testing"
)

func TestSinceFollowsTheRing(t *testing.T) {
	l, err := Open("", 5)
	if err != nil {
		t.Fatal(err)
	}
	if l.Seq() != 0 || len(l.Since("", 0, 0)) != 0 {
		t.Fatal("empty log")
	}
	for i := 1; i <= 8; i++ { // the ring wraps: events 4..8 are kept
		c := "a"
		if i%2 == 0 {
			c = "b"
		}
		l.Add(Event{Cluster: c, Message: fmt.Sprint(i)})
	}
	if l.Seq() != 8 {
		t.Fatalf("seq %d", l.Seq())
	}
	msgs := func(es []Event) string {
		s := ""
		for _, e := range es {
			s += e.Message
		}
		return s
	}
	for _, tc := range []struct {
		cluster string
		after   uint64
		n       int
		want    string
	}{
		{"", 0, 0, "45678"},
		{"", 6, 0, "78"},
		{"a", 0, 0, "57"},
		{"b", 5, 0, "68"},
		{"", 0, 2, "78"},
		{"", 8, 0, ""},
	} {
		if got := msgs(l.Since(tc.cluster, tc.after, tc.n)); got != tc.want {
			t.Errorf("Since(%q, %d, %d) = %q, want %q", tc.cluster, tc.after, tc.n, got, tc.want)
		}
	}
}
