package proxysql

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"replication-manager-pro/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func settings(mutate func(*config.Settings)) *config.Settings {
	s := config.Defaults()
	s.DBServersHosts = "10.0.0.11:3306,10.0.0.12:3306,10.0.0.13:3306"
	s.DBServersCredential = "repman:db-secret"
	s.ProxySQL = true
	s.ProxySQLServers = "127.0.0.1"
	s.ProxySQLPassword = "admin-secret"
	if mutate != nil {
		mutate(&s)
	}
	return &s
}

func slapos(s *config.Settings) {
	s.ProvOrchestrator = "slapos"
	s.DBServersHosts = "[2001:db8::10]:2099,[2001:db8::11]:2199"
	s.ProxySQLServers = "10.0.0.2"
	s.ProxySQLServersIPv6 = "[2001:db8::5]"
	s.ProxySQLPort = 7032
	s.ProxySQLAdminPort = 6032
	s.SlapOSProxySQLPartitions = "/srv/slapgrid/slappart7"
}

func TestGenerateConfigGolden(t *testing.T) {
	for _, c := range []struct {
		golden string
		mutate func(*config.Settings)
		check  func(t *testing.T, cfg map[string]any)
	}{
		{"default.cnf", nil, func(t *testing.T, cfg map[string]any) {
			want(t, cfg, "mysql_variables.interfaces", "0.0.0.0:3306;/var/lib/proxysql/proxysql.sock")
			want(t, cfg, "mysql_variables.monitor_writer_is_also_reader", false)
			want(t, cfg, "mysql_replication_hostgroups.0.writer_hostgroup", int64(0))
			want(t, cfg, "mysql_servers.2.address", "10.0.0.13")
			want(t, cfg, "mysql_users.0.password", "db-secret")
			if _, ok := cfg["mysql_query_rules"]; ok {
				t.Error("query rules with noreadwritesplit")
			}
		}},
		{"slapos.cnf", slapos, func(t *testing.T, cfg map[string]any) {
			want(t, cfg, "datadir", "/srv/slapgrid/slappart7")
			want(t, cfg, "mysql_variables.interfaces", "[2001:db8::5]:7032;10.0.0.2:7032;/srv/slapgrid/slappart7/proxysql.sock")
			// The admin interface stays off the partition's public IPv6 (proxysql-admin-bind-ipv6).
			want(t, cfg, "admin_variables.mysql_ifaces", "10.0.0.2:6032;/srv/slapgrid/slappart7/proxysql_admin.sock")
			want(t, cfg, "mysql_servers.0.address", "2001:db8::10")
			want(t, cfg, "mysql_servers.1.port", int64(2199))
		}},
		{"slapos-admin-ipv6.cnf", func(s *config.Settings) {
			slapos(s)
			s.ProxySQLAdminBindIPv6 = true
		}, func(t *testing.T, cfg map[string]any) {
			want(t, cfg, "admin_variables.mysql_ifaces", "[2001:db8::5]:6032;10.0.0.2:6032;/srv/slapgrid/slappart7/proxysql_admin.sock")
		}},
		{"readwritesplit.cnf", func(s *config.Settings) {
			s.ProvProxyTags = "masterslave,readwritesplit"
			s.ProxyServersReadOnMaster = true
		}, func(t *testing.T, cfg map[string]any) {
			want(t, cfg, "mysql_query_rules.0.match_digest", "^SELECT .* FOR UPDATE")
			want(t, cfg, "mysql_query_rules.0.destination_hostgroup", int64(0))
			want(t, cfg, "mysql_query_rules.3.match_digest", "^SELECT ")
			want(t, cfg, "mysql_query_rules.3.destination_hostgroup", int64(1))
			want(t, cfg, "mysql_variables.monitor_writer_is_also_reader", true)
		}},
		{"ssl.cnf", func(s *config.Settings) {
			slapos(s)
			s.ProvProxyTags = "masterslave,ssl"
		}, func(t *testing.T, cfg map[string]any) {
			want(t, cfg, "mysql_variables.have_ssl", true)
			want(t, cfg, "mysql_variables.ssl_p2s_ca", "/srv/slapgrid/slappart7/etc/proxysql/ssl/ca-cert.pem") // SlapOS's name
			want(t, cfg, "mysql_servers.0.use_ssl", int64(1))
		}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			p, err := ConfigParamsFromSettings(settings(c.mutate), 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := GenerateConfig(p)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", c.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, golden) {
				t.Errorf("%s differs from the generated file (go test -update rewrites it):\n%s", path, got)
			}
			cfg, err := parseLibconfig(string(got))
			if err != nil {
				t.Fatalf("generated file is not libconfig: %v", err)
			}
			c.check(t, cfg)
		})
	}
}

// Strings that need escaping survive a round trip through libconfig.
func TestGenerateConfigEscapes(t *testing.T) {
	s := settings(func(s *config.Settings) { s.DBServersCredential = "app:pa\"ss\\wo\trd\x01é" })
	p, err := ConfigParamsFromSettings(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.Datadir = "/srv/a \"quoted\" dir"
	out, err := GenerateConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseLibconfig(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want(t, cfg, "mysql_users.0.password", "pa\"ss\\wo\trd\x01é")
	want(t, cfg, "mysql_variables.monitor_password", "pa\"ss\\wo\trd\x01é")
	want(t, cfg, "datadir", "/srv/a \"quoted\" dir")

	p.AdminPassword = "a;b"
	if _, err := GenerateConfig(p); err == nil {
		t.Error("admin password with ';' accepted")
	}
}

func TestConfigParamsErrors(t *testing.T) {
	if _, err := ConfigParamsFromSettings(settings(nil), 1); err == nil {
		t.Error("second ProxySQL of a one-entry list")
	}
	if _, err := ConfigParamsFromSettings(settings(func(s *config.Settings) {
		slapos(s)
		s.SlapOSProxySQLPartitions = ""
	}), 0); err == nil {
		t.Error("slapos without a partition")
	}
}

func want(t *testing.T, cfg map[string]any, path string, v any) {
	t.Helper()
	var cur any = cfg
	for _, part := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		case []any:
			i, _ := strconv.Atoi(part)
			if i >= len(c) {
				t.Errorf("%s: index %d out of %d", path, i, len(c))
				return
			}
			cur = c[i]
		default:
			t.Errorf("%s: no %s", path, part)
			return
		}
	}
	if cur != v {
		t.Errorf("%s = %#v, want %#v", path, cur, v)
	}
}

// parseLibconfig is a small libconfig reader for the tests: settings "name = value" or
// "name : value" with optional ';' or ',', groups {...}, lists (...) and arrays [...],
// strings with libconfig's escapes (adjacent strings concatenated), integers, booleans,
// '#' comments. Groups become maps, lists and arrays slices.
func parseLibconfig(s string) (map[string]any, error) {
	p := &lcParser{s: s}
	m, err := p.settings(0)
	if err != nil {
		return nil, fmt.Errorf("offset %d: %w", p.i, err)
	}
	return m, nil
}

type lcParser struct {
	s string
	i int
}

func (p *lcParser) skip() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *lcParser) peek() byte {
	p.skip()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *lcParser) settings(end byte) (map[string]any, error) {
	m := map[string]any{}
	for {
		c := p.peek()
		if c == end {
			if end != 0 {
				p.i++
			}
			return m, nil
		}
		j := p.i
		for p.i < len(p.s) && (p.s[p.i] == '_' || p.s[p.i] == '-' || p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z' || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
			p.i++
		}
		name := p.s[j:p.i]
		if name == "" {
			return nil, fmt.Errorf("setting name expected, got %q", c)
		}
		if c := p.peek(); c != '=' && c != ':' {
			return nil, fmt.Errorf("'=' expected after %s", name)
		}
		p.i++
		v, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("duplicate setting %s", name)
		}
		m[name] = v
		if c := p.peek(); c == ';' || c == ',' {
			p.i++
		}
	}
}

func (p *lcParser) value() (any, error) {
	switch c := p.peek(); {
	case c == '{':
		p.i++
		return p.settings('}')
	case c == '(' || c == '[':
		p.i++
		closer := byte(')')
		if c == '[' {
			closer = ']'
		}
		var l []any
		if p.peek() == closer {
			p.i++
			return l, nil
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			switch p.peek() {
			case ',':
				p.i++
			case closer:
				p.i++
				return l, nil
			default:
				return nil, fmt.Errorf("',' or %q expected in list", closer)
			}
		}
	case c == '"':
		var b strings.Builder
		for p.peek() == '"' {
			p.i++
			for {
				if p.i >= len(p.s) {
					return nil, fmt.Errorf("unterminated string")
				}
				c := p.s[p.i]
				p.i++
				if c == '"' {
					break
				}
				if c < 0x20 {
					return nil, fmt.Errorf("raw control character in string")
				}
				if c != '\\' {
					b.WriteByte(c)
					continue
				}
				e := p.s[p.i]
				p.i++
				switch e {
				case '"', '\\':
					b.WriteByte(e)
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case 'f':
					b.WriteByte('\f')
				case 'x':
					n, err := strconv.ParseUint(p.s[p.i:p.i+2], 16, 8)
					if err != nil {
						return nil, err
					}
					b.WriteByte(byte(n))
					p.i += 2
				default:
					return nil, fmt.Errorf("bad escape \\%c", e)
				}
			}
		}
		return b.String(), nil
	default:
		j := p.i
		for p.i < len(p.s) && strings.IndexByte(" \t\r\n;,)}]#", p.s[p.i]) < 0 {
			p.i++
		}
		w := p.s[j:p.i]
		switch strings.ToLower(w) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		n, err := strconv.ParseInt(w, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad scalar %q", w)
		}
		return n, nil
	}
}
