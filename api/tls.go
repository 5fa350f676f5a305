package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
)

// Files of the generated self-signed pair, in <monitoring-datadir>/api/.
const (
	generatedCertFile = "api-cert.pem"
	generatedKeyFile  = "api-key.pem"
	apiDirName        = "api"
)

// GeneratedCertPaths returns where the self-signed certificate and key are kept.
func GeneratedCertPaths(datadir string) (cert, key string) {
	dir := filepath.Join(datadir, apiDirName)
	return filepath.Join(dir, generatedCertFile), filepath.Join(dir, generatedKeyFile)
}

// loadOrCreateCertificate returns monitoring-ssl-cert/-key when set; otherwise the
// self-signed pair kept in monitoring-datadir, generated on first use and regenerated only
// when unreadable or within 30 days of expiry (so clients that pinned it keep working
// across restarts).
func loadOrCreateCertificate(d *config.Settings) (tls.Certificate, error) {
	if d.MonitoringSSLCert != "" || d.MonitoringSSLKey != "" {
		if d.MonitoringSSLCert == "" || d.MonitoringSSLKey == "" {
			return tls.Certificate{}, errors.New("api TLS: monitoring-ssl-cert and monitoring-ssl-key must be set together")
		}
		c, err := tls.LoadX509KeyPair(d.MonitoringSSLCert, d.MonitoringSSLKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("api TLS: monitoring-ssl-cert/-key: %w", err)
		}
		return c, nil
	}
	certPath, keyPath := GeneratedCertPaths(d.MonitoringDatadir)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour {
			return c, nil
		}
	}
	if err := generateCertificate(certPath, keyPath, d.APIBind); err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("api TLS: generated pair: %w", err)
	}
	return c, nil
}

// generateCertificate writes a self-signed ECDSA P-256 certificate valid 5 years for
// localhost, the loopback addresses, this host's name and the bind address.
func generateCertificate(certPath, keyPath, bind string) error {
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return fmt.Errorf("api TLS: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("api TLS: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fmt.Errorf("api TLS: serial: %w", err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "replication-manager-pro", Organization: []string{"replication-manager-pro self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		tpl.DNSNames = append(tpl.DNSNames, h)
	}
	if ip := net.ParseIP(ipv6.Unbracket(bind)); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tpl.IPAddresses = append(tpl.IPAddresses, ip)
	} else if ip == nil && bind != "" && bind != "localhost" {
		tpl.DNSNames = append(tpl.DNSNames, bind)
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("api TLS: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("api TLS: key: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("api TLS: %w", err)
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("api TLS: %w", err)
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a crash never leaves a
// half-written key behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
