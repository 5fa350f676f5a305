package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"replication-manager-pro/ipv6"
)

// Credential is a user and password pair. Its String form masks the password.
type Credential struct {
	User     string
	Password string
}

// String returns MaskedValue: a credential is never printed.
func (c Credential) String() string { return MaskedValue }

// GoString keeps %#v masked too.
func (c Credential) GoString() string { return MaskedValue }

// ParseCredential splits "user:password" at the first colon. The password may be
// empty ("root:") and may hold colons; the user may not be empty. Errors never
// contain the text.
func ParseCredential(s string) (Credential, error) {
	user, pass, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || strings.TrimSpace(user) == "" {
		return Credential{}, errors.New("want user:password")
	}
	return Credential{User: user, Password: pass}, nil
}

// ParseCredentials parses a comma-separated list of user:password; "" gives nil.
func ParseCredentials(s string) ([]Credential, error) {
	var out []Credential
	for i, p := range splitList(s) {
		c, err := ParseCredential(p)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %v", i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// HostList parses the host list held by key (e.g. "db-servers-ignored-hosts")
// with ipv6.DefaultPort for entries without a port.
func (s *Settings) HostList(key string) ([]ipv6.HostPort, error) {
	t, ok := s.Text(key)
	if !ok {
		return nil, fmt.Errorf("unknown key %q", key)
	}
	return ipv6.ParseList(t, ipv6.DefaultPort)
}

// Hosts returns db-servers-hosts.
func (s *Settings) Hosts() ([]ipv6.HostPort, error) {
	return ipv6.ParseList(s.DBServersHosts, ipv6.DefaultPort)
}

// PreferedMasters returns db-servers-prefered-master.
func (s *Settings) PreferedMasters() ([]ipv6.HostPort, error) {
	return ipv6.ParseList(s.DBServersPreferedMaster, ipv6.DefaultPort)
}

// IgnoredHosts returns db-servers-ignored-hosts.
func (s *Settings) IgnoredHosts() ([]ipv6.HostPort, error) {
	return ipv6.ParseList(s.DBServersIgnoredHosts, ipv6.DefaultPort)
}

// ProxySQLHosts returns proxysql-servers; entries without a port get proxysql-admin-port.
func (s *Settings) ProxySQLHosts() ([]ipv6.HostPort, error) {
	return ipv6.ParseList(s.ProxySQLServers, s.ProxySQLAdminPort)
}

// List returns the comma-separated list held by key, trimmed, without empty entries.
func (s *Settings) List(key string) []string {
	t, _ := s.Text(key)
	return splitList(t)
}

// FailoverAutomatic reports whether failovers run without an operator
// (failover-mode = "automatic"); "manual" (the default) gives false.
func (s *Settings) FailoverAutomatic() bool { return s.FailoverMode == "automatic" }

// MonitoringTickerDuration returns monitoring-ticker as a duration (0.2 -> 200ms).
func (s *Settings) MonitoringTickerDuration() time.Duration {
	return time.Duration(s.MonitoringTicker * float64(time.Second))
}

// DBCredential returns db-servers-credential.
func (s *Settings) DBCredential() (Credential, error) { return ParseCredential(s.DBServersCredential) }

// ReplicationCredentials returns replication-credential.
func (s *Settings) ReplicationCredentials() (Credential, error) {
	return ParseCredential(s.ReplicationCredential)
}

// APIUsers returns api-credentials followed by api-credentials-external.
func (s *Settings) APIUsers() ([]Credential, error) {
	a, err := ParseCredentials(s.APICredentials)
	if err != nil {
		return nil, fmt.Errorf("api-credentials: %v", err)
	}
	b, err := ParseCredentials(s.APICredentialsExternal)
	if err != nil {
		return nil, fmt.Errorf("api-credentials-external: %v", err)
	}
	return append(a, b...), nil
}
