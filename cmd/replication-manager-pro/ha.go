package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/ha"
)

// startHA joins the other managers through etcd when etcd-endpoints is set; nil, nil when
// this manager works alone.
func startHA(ctx context.Context, s *config.Settings, log *logrus.Logger) (*ha.Coordinator, error) {
	if s.EtcdEndpoints == "" {
		return nil, nil
	}
	cfg := ha.Config{
		Endpoints: s.List("etcd-endpoints"), Prefix: s.EtcdPrefix, TTL: time.Duration(s.EtcdLeaseTTL) * time.Second,
		Name: s.EtcdManagerName, Addr: apiAddr(s), Username: s.EtcdUsername, Password: s.EtcdPassword,
		Log: log.WithField("component", "ha"),
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = host + ":" + strconv.Itoa(s.APIPort)
	}
	if s.EtcdTLSCACert != "" || s.EtcdTLSClientCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.EtcdTLSCACert != "" {
			pem, err := os.ReadFile(s.EtcdTLSCACert)
			if err != nil {
				return nil, fmt.Errorf("etcd-tls-ca-cert: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("etcd-tls-ca-cert %s: no PEM certificate", s.EtcdTLSCACert)
			}
			tc.RootCAs = pool
		}
		if s.EtcdTLSClientCert != "" {
			pair, err := tls.LoadX509KeyPair(s.EtcdTLSClientCert, s.EtcdTLSClientKey)
			if err != nil {
				return nil, fmt.Errorf("etcd-tls-client-cert/-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.TLS = tc
	}
	c, err := ha.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"manager": cfg.Name, "etcd": strings.Join(cfg.Endpoints, ",")}).Info("sharing clusters with the other managers through etcd")
	return c, nil
}

// apiAddr is the address other managers and refused clients are told to use to reach this
// manager's API: api-public-url when set to something else than its default, otherwise
// https://<bind or host name>:<api-port>.
func apiAddr(s *config.Settings) string {
	if s.APIPublicURL != "" && s.APIPublicURL != config.Defaults().APIPublicURL {
		return s.APIPublicURL
	}
	host := s.APIBind
	if host == "" || host == "0.0.0.0" || host == "::" {
		host, _ = os.Hostname()
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(s.APIPort))
}
