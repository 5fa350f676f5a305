package configurator

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestClusterTLSCreatedOnceAndVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster1")
	a, err := ClusterTLS(dir, "cluster1", []string{"2001:db8::10", "db1.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ClusterTLS(dir, "cluster1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.ServerKey, b.ServerKey) || !bytes.Equal(a.CA, b.CA) {
		t.Fatal("certificates regenerated instead of reused")
	}
	st, err := os.Stat(filepath.Join(dir, "server-key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("server key mode: %v %v", st.Mode(), err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CA)
	blk, _ := pem.Decode(a.ServerCert)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"2001:db8::10", "db1.example.org", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
}
