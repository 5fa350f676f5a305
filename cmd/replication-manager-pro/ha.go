package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/ha"
	"replication-manager-pro/orchestrator/slapos"
	"replication-manager-pro/tenant"
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

// shareSecrets gives every manager the same keys and certificates, before any cluster is
// monitored: the partition key (the agents' credentials and the job account's password),
// the tenant key (sealed tenant passwords) and each cluster's TLS files (bundles, tenant
// URLs). Otherwise, after a leader change, partitions would be refused and tenants' URLs
// would change.
func shareSecrets(ctx context.Context, coord *ha.Coordinator, cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dirs := map[string]bool{}
	settings := []*config.Settings{&cfg.Default}
	for _, c := range cfg.Clusters {
		settings = append(settings, &c.Settings)
	}
	for _, s := range settings {
		wd := configurator.WorkingDir(s)
		if wd == "" || dirs[wd] {
			continue
		}
		dirs[wd] = true
		for _, set := range []ha.SecretFiles{
			{Name: "partition.key", Paths: map[string]string{"key": slapos.PartitionKeyPath(wd)},
				Create: func() error { _, err := slapos.LoadOrCreatePartitionKey(wd); return err }},
			{Name: "tenant.key", Paths: map[string]string{"key": filepath.Join(wd, filepath.FromSlash(tenant.KeyFile))},
				Create: func() error { _, err := tenant.LoadOrCreateSealer(wd); return err }},
		} {
			if err := coord.ShareFiles(ctx, set); err != nil {
				return err
			}
		}
	}
	for _, c := range cfg.Clusters {
		if _, err := c.Settings.Hosts(); err != nil {
			continue // the cluster's own start says what is wrong
		}
		c := c
		set := ha.SecretFiles{Name: "clusters/" + c.Name + "/tls", Paths: configurator.ClusterTLSPaths(&c.Settings, c.Name),
			Create: func() error { _, err := clusterTLS(&c); return err }}
		if err := coord.ShareFiles(ctx, set); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	return nil
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
