package ipv6

import (
	"net"
	"strings"
	"testing"
)

func TestParseHostPort(t *testing.T) {
	cases := []struct {
		in       string
		host     string
		port     int
		str      string
		brackets string
		v6       bool
	}{
		{"db1", "db1", 3306, "db1:3306", "db1", false},
		{"db1:3307", "db1", 3307, "db1:3307", "db1", false},
		{" 10.0.0.1:2099 ", "10.0.0.1", 2099, "10.0.0.1:2099", "10.0.0.1", false},
		{"[::1]", "::1", 3306, "[::1]:3306", "[::1]", true},
		{"[::1]:3307", "::1", 3307, "[::1]:3307", "[::1]", true},
		{"::1", "::1", 3306, "[::1]:3306", "[::1]", true},
		{"[2001:67c:1254:e:89::5df3]:2099", "2001:67c:1254:e:89::5df3", 2099, "[2001:67c:1254:e:89::5df3]:2099", "[2001:67c:1254:e:89::5df3]", true},
		{"[fe80::1%eth0]:3306", "fe80::1%eth0", 3306, "[fe80::1%eth0]:3306", "[fe80::1%eth0]", true},
		{"fe80::1%eth0", "fe80::1%eth0", 3306, "[fe80::1%eth0]:3306", "[fe80::1%eth0]", true},
		{"my_host.example.org:1", "my_host.example.org", 1, "my_host.example.org:1", "my_host.example.org", false},
	}
	for _, c := range cases {
		hp, err := ParseHostPort(c.in, DefaultPort)
		if err != nil {
			t.Errorf("ParseHostPort(%q): %v", c.in, err)
			continue
		}
		if hp.Host != c.host || hp.Port != c.port {
			t.Errorf("ParseHostPort(%q) = %+v, want host %q port %d", c.in, hp, c.host, c.port)
		}
		if got := hp.String(); got != c.str {
			t.Errorf("%q.String() = %q, want %q", c.in, got, c.str)
		}
		if got := hp.HostBracketed(); got != c.brackets {
			t.Errorf("%q.HostBracketed() = %q, want %q", c.in, got, c.brackets)
		}
		if hp.IsIPv6() != c.v6 {
			t.Errorf("%q.IsIPv6() = %v", c.in, hp.IsIPv6())
		}
	}
}

func TestParseHostPortErrors(t *testing.T) {
	bad := map[string]string{
		"":                   "empty",
		"[::1":               "missing ']'",
		"[::1]x":             "after ']'",
		"[::1]:":             "empty port",
		"db1:":               "empty port",
		"db1:abc":            "not a number",
		"db1:70000":          "not a number",
		"db1:0":              "not a number",
		"[db1]:3306":         "not an IPv6",
		"1:2:3":              "not an IPv6",
		"db1;drop":           "not allowed",
		"db'1":               "not allowed",
		":3306":              "empty host",
		"[10.0.0.1]:3306":    "not an IPv6",
		"db 1":               "not allowed",
		"[fe80::1%a]b]:3306": "after ']'",
	}
	for in, want := range bad {
		_, err := ParseHostPort(in, DefaultPort)
		if err == nil {
			t.Errorf("ParseHostPort(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHostPort(%q) error %q, want it to mention %q", in, err, want)
		}
	}
}

func TestBracketUnbracket(t *testing.T) {
	for in, want := range map[string]string{"::1": "[::1]", "[::1]": "[::1]", "db1": "db1", "10.0.0.1": "10.0.0.1"} {
		if got := Bracket(in); got != want {
			t.Errorf("Bracket(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"[::1]": "::1", "::1": "::1", "db1": "db1", "[db1]": "[db1]", "[2001:db8::5]": "2001:db8::5"} {
		if got := Unbracket(in); got != want {
			t.Errorf("Unbracket(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestURLHostEscapesZone(t *testing.T) {
	hp, _ := ParseHostPort("[fe80::1%eth0]:3306", DefaultPort)
	if got := hp.URLHost(); got != "[fe80::1%25eth0]" {
		t.Fatalf("URLHost = %q", got)
	}
	hp, _ = ParseHostPort("db1", DefaultPort)
	if got := hp.URLHost(); got != "db1" {
		t.Fatalf("URLHost = %q", got)
	}
}

// The repman form must be what net.Dial and go-sql-driver accept.
func TestStringIsDialAddress(t *testing.T) {
	for _, in := range []string{"[::1]:2099", "127.0.0.1:3306", "[fe80::1%eth0]:3306"} {
		hp, err := ParseHostPort(in, DefaultPort)
		if err != nil {
			t.Fatal(err)
		}
		h, p, err := net.SplitHostPort(hp.String())
		if err != nil || h != hp.Host || p == "" {
			t.Errorf("net.SplitHostPort(%q) = %q %q %v", hp.String(), h, p, err)
		}
	}
}

func TestParseList(t *testing.T) {
	l, err := ParseList("[2001:db8::10]:2099, [2001:db8::11]:2199,db3", DefaultPort)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 3 || l[1].Host != "2001:db8::11" || l[1].Port != 2199 || l[2].Port != 3306 {
		t.Fatalf("ParseList = %+v", l)
	}
	if got := FormatList(l); got != "[2001:db8::10]:2099,[2001:db8::11]:2199,db3:3306" {
		t.Fatalf("FormatList = %q", got)
	}
	if l, err := ParseList("  ", DefaultPort); err != nil || l != nil {
		t.Fatalf("empty list: %v %v", l, err)
	}
	_, err = ParseList("db1,,db2", DefaultPort)
	if err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("hole not reported with its index: %v", err)
	}
	_, err = ParseList("db1,[::1:3306", DefaultPort)
	if err == nil || !strings.Contains(err.Error(), "entry 2") || !strings.Contains(err.Error(), "[::1:3306") {
		t.Fatalf("bad entry not named: %v", err)
	}
}

func TestParseBindList(t *testing.T) {
	l, err := ParseBindList("[2001:db8::5]:6033;10.0.0.2:6033;/srv/slapgrid/slappart0/var/proxysql.sock", 6033)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 3 || l[0].Addr.Host != "2001:db8::5" || l[1].Addr.Host != "10.0.0.2" || l[2].Socket == "" {
		t.Fatalf("ParseBindList = %+v", l)
	}
	if got := FormatBindList(l); got != "[2001:db8::5]:6033;10.0.0.2:6033;/srv/slapgrid/slappart0/var/proxysql.sock" {
		t.Fatalf("FormatBindList = %q", got)
	}
	l, err = ParseBindList("[::]:6033;0.0.0.0:6033;", 3306)
	if err != nil || len(l) != 2 || l[0].String() != "[::]:6033" {
		t.Fatalf("trailing ';': %+v %v", l, err)
	}
	if _, err := ParseBindList("[::]:6033;;0.0.0.0:6033", 3306); err == nil {
		t.Fatal("hole accepted")
	}
	if _, err := ParseBindList("[::]:99999", 3306); err == nil {
		t.Fatal("bad port accepted")
	}
}

// FuzzHostPortRoundTrip: whatever parses must format to a string that parses back to the
// same value, and parsing must never panic.
func FuzzHostPortRoundTrip(f *testing.F) {
	for _, s := range []string{"db1", "db1:3307", "[::1]:2099", "::1", "[fe80::1%eth0]:1", "10.0.0.1", "[", "]:", "a:b:c", "[::ffff:10.0.0.1]:3306"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, err := ParseHostPort(s, DefaultPort)
		if err != nil {
			return
		}
		back, err := ParseHostPort(hp.String(), 1)
		if err != nil {
			t.Fatalf("%q -> %q does not parse back: %v", s, hp.String(), err)
		}
		if back != hp {
			t.Fatalf("%q -> %q -> %+v, want %+v", s, hp.String(), back, hp)
		}
		if Unbracket(hp.HostBracketed()) != hp.Host {
			t.Fatalf("Unbracket(HostBracketed) of %+v = %q", hp, Unbracket(hp.HostBracketed()))
		}
	})
}

func FuzzBindListRoundTrip(f *testing.F) {
	for _, s := range []string{"[::]:6033;0.0.0.0:6033", "/a.sock", "[2001:db8::5]:1;/x", ";", "a;b;c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseBindList(s, 6033)
		if err != nil {
			return
		}
		out := FormatBindList(l)
		back, err := ParseBindList(out, 1)
		if err != nil {
			t.Fatalf("%q -> %q does not parse back: %v", s, out, err)
		}
		if len(back) != len(l) {
			t.Fatalf("%q -> %q: %d entries, want %d", s, out, len(back), len(l))
		}
		for i := range l {
			if back[i] != l[i] {
				t.Fatalf("%q entry %d: %+v, want %+v", s, i, back[i], l[i])
			}
		}
	})
}

func TestSameAddr(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"[::1]:3306", "[0::1]:3306", true},
		{"[::1]:3306", "::1", true},
		{"[::1]:3306", "[0:0:0:0:0:0:0:1]:3306", true},
		{"[::ffff:127.0.0.1]:3306", "127.0.0.1:3306", true},
		{"[::FFFF:7f00:1]:3306", "127.0.0.1:3306", true},
		{"DB1:3306", "db1:3306", true},
		{"My-Host.Example.ORG:1", "my-host.example.org:1", true},
		{"[2001:DB8::1]:1", "[2001:db8::1]:1", true},
		{"[2001:db8:0:0::1]:1", "[2001:DB8::0:1]:1", true},
		{"[fe80::1%eth0]:3306", "[FE80::1%eth0]:3306", true},
		{"[fe80::1%eth0]:3306", "[fe80::1%eth1]:3306", false},
		{"[fe80::1%eth0]:3306", "[fe80::1%ETH0]:3306", false},
		{"[fe80::1%eth0]:3306", "[fe80::1]:3306", false},
		{"db1:3306", "db1:3307", false},
		{"[::1]:3306", "[::1]:3307", false},
		{"127.0.0.1:3306", "localhost:3306", false},
		{"[::1]:3306", "127.0.0.1:3306", false},
		{"[::1]:3306", "localhost:3306", false},
		{"10.0.0.1:1", "10.0.0.2:1", false},
		{"db1:1", "db10:1", false},
	}
	for _, c := range cases {
		a, err := ParseHostPort(c.a, DefaultPort)
		if err != nil {
			t.Fatalf("%q: %v", c.a, err)
		}
		b, err := ParseHostPort(c.b, DefaultPort)
		if err != nil {
			t.Fatalf("%q: %v", c.b, err)
		}
		if got := SameAddr(a, b); got != c.same {
			t.Errorf("SameAddr(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
		if got := SameAddr(b, a); got != c.same {
			t.Errorf("SameAddr(%s, %s) = %v, want %v (not symmetric)", c.b, c.a, got, c.same)
		}
	}
	// Hosts stored with their brackets (as repman writes them) compare equal too.
	if !SameAddr(HostPort{Host: "[2001:db8::1]", Port: 1}, HostPort{Host: "2001:DB8::1", Port: 1}) {
		t.Error("bracketed host in a HostPort not equal to the bare one")
	}
}

func TestSameHost(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"::1", "::1", true},
		{"[::1]", "::1", true},
		{"[::1]", "[0:0:0:0:0:0:0:1]", true},
		{"0:0:0:0:0:0:0:1", "::1", true},
		{"[2001:DB8::10]", "2001:db8::10", true},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"[::ffff:192.0.2.1]", "192.0.2.1", true},
		{"::ffff:c000:201", "192.0.2.1", true},
		{"fe80::1%eth0", "[fe80::1%eth0]", true},
		{"fe80::1%eth0", "fe80::1", false},
		{"fe80::1%eth0", "fe80::1%eth1", false},
		{"fe80::1%eth0", "fe80::1%Eth0", false},
		{"DB1.Example.org", "db1.example.org", true},
		{"LOCALHOST", "localhost", true},
		{"localhost", "127.0.0.1", false},
		{"localhost", "::1", false},
		{"::1", "127.0.0.1", false},
		{"192.0.2.1", "192.0.2.01", false}, // not an IPv4 literal: compared as a name
		{"[db1]", "db1", false},            // brackets only belong around IPv6
		{"db1", "db2", false},
		{"", "", true},
		{"", "db1", false},
	}
	for _, c := range cases {
		if got := SameHost(c.a, c.b); got != c.same {
			t.Errorf("SameHost(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
		if got := SameHost(c.b, c.a); got != c.same {
			t.Errorf("SameHost(%q, %q) = %v, want %v (not symmetric)", c.b, c.a, got, c.same)
		}
	}
}

func BenchmarkSameAddr(b *testing.B) {
	x := HostPort{Host: "2001:db8::10", Port: 3306}
	y := HostPort{Host: "2001:DB8::10", Port: 3306}
	for i := 0; i < b.N; i++ {
		if !SameAddr(x, y) {
			b.Fatal("not same")
		}
	}
}
