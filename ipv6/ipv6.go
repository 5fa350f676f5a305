// Package ipv6 parses and formats the host:port forms replication-manager configurations use,
// where IPv6 literals are written with brackets ("[2001:db8::1]:2099") but MariaDB's CHANGE
// MASTER, ProxySQL's mysql_servers and log lines want the bare address ("2001:db8::1").
//
// A HostPort keeps the host unbracketed; String gives the bracketed repman form, which is also
// what net.Dial and go-sql-driver's tcp(...) address expect.
package ipv6

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is MariaDB's port, used when an address names none.
const DefaultPort = 3306

// HostPort is one address: a host name, an IPv4 literal or an IPv6 literal (without brackets,
// possibly with a %zone), and a TCP port.
type HostPort struct {
	Host string
	Port int
}

// ParseHostPort reads "db1", "db1:3307", "10.0.0.1:3307", "[::1]", "[::1]:3307",
// "[fe80::1%eth0]:3306" or a bare IPv6 literal "::1" (which cannot carry a port).
// A missing port becomes defaultPort.
func ParseHostPort(s string, defaultPort int) (HostPort, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return HostPort{}, errors.New("empty address")
	}
	var host, port string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return HostPort{}, fmt.Errorf("address %q: missing ']'", in)
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return HostPort{}, fmt.Errorf("address %q: unexpected %q after ']'", in, rest)
			}
			port = rest[1:]
			if port == "" {
				return HostPort{}, fmt.Errorf("address %q: empty port", in)
			}
		}
		if !isIPv6Literal(host) {
			return HostPort{}, fmt.Errorf("address %q: %q in brackets is not an IPv6 address", in, host)
		}
	case strings.Count(s, ":") > 1:
		// Bare IPv6 literal: with several colons no port can be told apart.
		if !isIPv6Literal(s) {
			return HostPort{}, fmt.Errorf("address %q: not an IPv6 address (write IPv6 with a port as [addr]:port)", in)
		}
		host = s
	case strings.Contains(s, ":"):
		i := strings.IndexByte(s, ':')
		host, port = s[:i], s[i+1:]
		if port == "" {
			return HostPort{}, fmt.Errorf("address %q: empty port", in)
		}
	default:
		host = s
	}
	if host == "" {
		return HostPort{}, fmt.Errorf("address %q: empty host", in)
	}
	if !isIPv6Literal(host) {
		if err := checkHostName(host); err != nil {
			return HostPort{}, fmt.Errorf("address %q: %w", in, err)
		}
	}
	p := defaultPort
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return HostPort{}, fmt.Errorf("address %q: port %q is not a number in 1-65535", in, port)
		}
		p = n
	}
	if p < 0 || p > 65535 {
		return HostPort{}, fmt.Errorf("address %q: default port %d out of range", in, p)
	}
	return HostPort{Host: host, Port: p}, nil
}

// checkHostName accepts DNS names and IPv4 literals; it rejects characters that would break
// a DSN, a URL or a SQL literal, so later layers can rely on a clean host.
func checkHostName(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 characters")
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
		default:
			return fmt.Errorf("host %q: character %q not allowed in a host name", h, r)
		}
	}
	return nil
}

// isIPv6Literal reports whether s is an IPv6 address, optionally with a zone.
func isIPv6Literal(s string) bool {
	if !strings.Contains(s, ":") {
		return false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return false
	}
	if z := a.Zone(); z != "" && strings.ContainsAny(z, "[]/ \t,;") {
		return false
	}
	return true
}

// IsIPv6 reports whether the host is an IPv6 literal.
func (h HostPort) IsIPv6() bool { return isIPv6Literal(h.Host) }

// HostBracketed is the host as repman stores it: "[::1]" for IPv6, the host otherwise.
func (h HostPort) HostBracketed() string { return Bracket(h.Host) }

// String is "[::1]:3306" or "db1:3306": the repman form, also fit for net.Dial and DSNs.
func (h HostPort) String() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// URLHost is the host for a URL authority: brackets for IPv6 and the zone's '%' escaped as
// "%25" (RFC 6874), e.g. "[fe80::1%25eth0]".
func (h HostPort) URLHost() string {
	if !h.IsIPv6() {
		return h.Host
	}
	return "[" + strings.Replace(h.Host, "%", "%25", 1) + "]"
}

// Bracket adds brackets around an IPv6 literal; other hosts and already bracketed ones are
// returned unchanged.
func Bracket(host string) string {
	if isIPv6Literal(host) {
		return "[" + host + "]"
	}
	return host
}

// Unbracket removes the brackets around an IPv6 literal: the form CHANGE MASTER and ProxySQL
// want. Other hosts are returned unchanged.
func Unbracket(host string) string {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' && isIPv6Literal(host[1:len(host)-1]) {
		return host[1 : len(host)-1]
	}
	return host
}

// ParseList reads a comma-separated list such as db-servers-hosts. Spaces around entries are
// ignored; an empty string gives an empty list; the error names the first bad entry.
func ParseList(s string, defaultPort int) ([]HostPort, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]HostPort, 0, len(parts))
	for i, p := range parts {
		if strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("entry %d is empty", i+1)
		}
		hp, err := ParseHostPort(p, defaultPort)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		out = append(out, hp)
	}
	return out, nil
}

// FormatList writes a list back in the comma-separated repman form.
func FormatList(l []HostPort) string {
	s := make([]string, len(l))
	for i, h := range l {
		s[i] = h.String()
	}
	return strings.Join(s, ",")
}

// MarshalText writes the repman form, so JSON shows "[::1]:3306"; the zero value (no
// server) is written "".
func (h HostPort) MarshalText() ([]byte, error) {
	if h == (HostPort{}) {
		return nil, nil
	}
	return []byte(h.String()), nil
}

// UnmarshalText reads the repman form (default port 3306); "" is the zero value.
func (h *HostPort) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*h = HostPort{}
		return nil
	}
	hp, err := ParseHostPort(string(b), DefaultPort)
	if err != nil {
		return err
	}
	*h = hp
	return nil
}

// SameAddr is the one test of "same server" of the whole program: same port and SameHost.
// Addresses from the configuration, from SHOW SLAVE STATUS, from the API's routes and from
// orchestrators are all compared with it.
func SameAddr(a, b HostPort) bool {
	if a == b {
		return true // the common case: both from the same configuration list
	}
	return a.Port == b.Port && SameHost(a.Host, b.Host)
}

// SameHost reports whether two hosts, as written, name the same machine, without any DNS
// lookup:
//
//   - brackets around an IPv6 literal are ignored: "[::1]" is "::1";
//   - IP literals compare as addresses: "::1", "0:0:0:0:0:0:0:1" and "0::1" are one address,
//     "2001:DB8::1" is "2001:db8::1", and an IPv4-mapped IPv6 address is its IPv4
//     ("::ffff:10.0.0.1" is "10.0.0.1");
//   - zone ids must be equal, case included (they name interfaces, which Linux names
//     case-sensitively): "fe80::1%eth0" is neither "fe80::1%ETH0" nor "fe80::1";
//   - anything else is a host name, compared case-insensitively ("DB1" is "db1"); a name is
//     never equal to an IP literal ("localhost" is not "127.0.0.1").
//
// It is the host-only form of SameAddr, for the API's routes that name a server by host.
func SameHost(a, b string) bool {
	if a == b {
		return true
	}
	a, b = Unbracket(a), Unbracket(b)
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	switch {
	case errA == nil && errB == nil:
		return x.Unmap() == y.Unmap()
	case errA == nil || errB == nil:
		return false
	}
	return strings.EqualFold(a, b)
}
