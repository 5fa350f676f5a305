package configurator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The cluster's certificate files, named as replication-manager names them in
// <working dir>/<cluster>/.
var tlsNames = []string{"ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem"}

// ClusterTLS returns the cluster's TLS files from dir, creating them the first time: a
// cluster CA, a server certificate for hosts (names or IP literals) and a client
// certificate, ECDSA P-256, valid ten years. Databases of the `ssl` tag get them in their
// bundle; keys are written 0600 and never logged.
func ClusterTLS(dir, cluster string, hosts []string) (*TLSFiles, error) {
	files := make([][]byte, len(tlsNames))
	complete := true
	for i, n := range tlsNames {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			complete = false
			break
		}
		files[i] = b
	}
	if complete {
		return &TLSFiles{CA: files[0], ServerCert: files[1], ServerKey: files[2], ClientCert: files[3], ClientKey: files[4]}, nil
	}
	t, err := newClusterTLS(cluster, hosts, time.Now())
	if err != nil {
		return nil, fmt.Errorf("cluster %s: certificates: %w", cluster, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cluster %s: certificates: %w", cluster, err)
	}
	for i, b := range [][]byte{t.CA, t.ServerCert, t.ServerKey, t.ClientCert, t.ClientKey} {
		tmp := filepath.Join(dir, "."+tlsNames[i]+".tmp")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return nil, fmt.Errorf("cluster %s: certificates: %w", cluster, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, tlsNames[i])); err != nil {
			return nil, fmt.Errorf("cluster %s: certificates: %w", cluster, err)
		}
	}
	return t, nil
}

func newClusterTLS(cluster string, hosts []string, now time.Time) (*TLSFiles, error) {
	if cluster == "" {
		return nil, errors.New("no cluster name")
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		return n
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cluster + " CA", Organization: []string{"replication-manager-pro"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	leaf := func(cn string, usage x509.ExtKeyUsage, sans []string) ([]byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		for _, h := range sans {
			if ip := net.ParseIP(h); ip != nil {
				tpl.IPAddresses = append(tpl.IPAddresses, ip)
			} else if h != "" {
				tpl.DNSNames = append(tpl.DNSNames, h)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", kder), nil
	}
	sans := append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	srvCert, srvKey, err := leaf(cluster+" server", x509.ExtKeyUsageServerAuth, sans)
	if err != nil {
		return nil, err
	}
	cliCert, cliKey, err := leaf(cluster+" client", x509.ExtKeyUsageClientAuth, nil)
	if err != nil {
		return nil, err
	}
	return &TLSFiles{CA: pemOf("CERTIFICATE", caDER), ServerCert: srvCert, ServerKey: srvKey, ClientCert: cliCert, ClientKey: cliKey}, nil
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
