package ipv6

import (
	"fmt"
	"strings"
)

// Bind is one entry of a listener list such as ProxySQL's mysql_variables.interfaces:
// either a TCP address or a unix socket path.
type Bind struct {
	Addr   HostPort
	Socket string // set for a unix socket entry; Addr is then zero
}

// String is "[::]:6033", "0.0.0.0:6033" or the socket path.
func (b Bind) String() string {
	if b.Socket != "" {
		return b.Socket
	}
	return b.Addr.String()
}

// ParseBindList reads a ';'-separated listener list: "[::]:6033;0.0.0.0:6033;/run/x.sock".
// Entries starting with '/' are unix sockets. An empty string gives an empty list.
func ParseBindList(s string, defaultPort int) ([]Bind, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ";")
	out := make([]Bind, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			// A trailing ';' is common in generated lists; tolerate it, but not holes.
			if i == len(parts)-1 {
				continue
			}
			return nil, fmt.Errorf("bind entry %d is empty", i+1)
		}
		if strings.HasPrefix(p, "/") {
			if strings.ContainsAny(p, "\"\n") {
				return nil, fmt.Errorf("bind entry %d: socket path %q has a forbidden character", i+1, p)
			}
			out = append(out, Bind{Socket: p})
			continue
		}
		hp, err := ParseHostPort(p, defaultPort)
		if err != nil {
			return nil, fmt.Errorf("bind entry %d: %w", i+1, err)
		}
		out = append(out, Bind{Addr: hp})
	}
	return out, nil
}

// FormatBindList writes the ';'-separated form.
func FormatBindList(l []Bind) string {
	s := make([]string, len(l))
	for i, b := range l {
		s[i] = b.String()
	}
	return strings.Join(s, ";")
}
