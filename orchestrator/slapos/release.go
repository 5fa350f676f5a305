package slapos

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"replication-manager-pro/ipv6"
)

// What SlapOS's repman software release fixes and the render mirrors.
const (
	// HeartbeatUser is the account SlapOS's database partitions create for the heartbeat
	// (monitoring-write-heartbeat-credential), with the administration account's password.
	HeartbeatUser = "heartbeat"
	// ReceiverPortOffset: a database partition receives jobs' streams on its port + 9 (the
	// socat port of SlapOS's dbjobs), published as its receiver-port.
	ReceiverPortOffset = 9
)

// TLSPaths returns the certificate and key of the root partition's API, where SlapOS's
// caucase updater puts them: <root>/etc/ssl/repman-cert.crt and .key.
func TLSPaths(root string) (cert, key string) {
	dir := filepath.Join(root, "etc", "ssl")
	return filepath.Join(dir, "repman-cert.crt"), filepath.Join(dir, "repman-cert.key")
}

// ensureCertificate creates a self-signed certificate for the root partition's addresses
// at TLSPaths when none is there (on SlapOS caucase provides it): the rendered
// monitoring-ssl-cert and -key always name files the daemon can load. Existing files are
// never replaced.
func ensureCertificate(root Partition) error {
	certPath, keyPath := TLSPaths(root.Path)
	_, cerr := os.Stat(certPath)
	_, kerr := os.Stat(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		return nil
	case cerr == nil || kerr == nil:
		return fmt.Errorf("%s: only one of the certificate and its key exists", filepath.Dir(certPath))
	case !errors.Is(cerr, fs.ErrNotExist):
		return cerr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "replication-manager-pro"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}}
	for _, a := range []string{root.IPv4, ipv6.Unbracket(root.IPv6)} {
		if ip := net.ParseIP(a); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	if err := writeSynced(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeSynced(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
