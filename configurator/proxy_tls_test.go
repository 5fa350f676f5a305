package configurator

import (
	"bytes"
	"testing"

	"replication-manager-pro/proxysql"
)

// With TLS, a ProxySQL bundle carries the cluster's CA and server certificate where ProxySQL
// looks for its frontend certificate: <datadir>/proxysql-{ca,cert,key}.pem, relative to the
// bundle's root (the partition on SlapOS, whose datadir is the partition itself).
func TestProxyBundleShipsFrontendCertificates(t *testing.T) {
	files := &TLSFiles{CA: []byte("CA"), ServerCert: []byte("CERT"), ServerKey: []byte("KEY"), ClientCert: []byte("CC"), ClientKey: []byte("CK")}
	base := proxysql.ConfigParams{AdminUser: "a", AdminPassword: "p", AdminPort: 6032, Port: 7032, BindIPv4: "127.0.0.1",
		Hostgroups: proxysql.Hostgroups{Writer: 10, Reader: 20, Offline: 666}, Tags: []string{proxysql.TagSSL}}
	for _, c := range []struct {
		datadir, ssldir, prefix string
	}{
		{"/srv/slapgrid/slappart7", "/srv/slapgrid/slappart7/etc/proxysql/ssl", ""},
		{"/var/lib/proxysql", "/etc/proxysql/ssl", "var/lib/proxysql/"},
	} {
		p := base
		p.Datadir, p.SSLDir = c.datadir, c.ssldir
		entries, err := GenerateProxy(ProxyParams{ProxySQL: p, TLS: files, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Entry{}
		for _, e := range entries {
			got[e.Path] = e
		}
		for name, want := range map[string][]byte{"proxysql-ca.pem": files.CA, "proxysql-cert.pem": files.ServerCert, "proxysql-key.pem": files.ServerKey} {
			e, ok := got[c.prefix+name]
			if !ok || !bytes.Equal(e.Data, want) {
				t.Errorf("%s: %s%s missing or wrong (%v)", c.datadir, c.prefix, name, ok)
			}
		}
		if e := got[c.prefix+"proxysql-key.pem"]; e.Mode != 0o600 {
			t.Errorf("key mode %o", e.Mode)
		}
		// Without TLS nothing of the kind.
		entries, _ = GenerateProxy(ProxyParams{ProxySQL: p, Version: "test"})
		for _, e := range entries {
			if bytes.Contains([]byte(e.Path), []byte("proxysql-cert")) {
				t.Errorf("without TLS: %s", e.Path)
			}
		}
	}
}
