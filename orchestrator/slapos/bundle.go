package slapos

import (
	"context"
	"fmt"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/orchestrator"
)

// TLSSource returns a cluster's certificates for the bundles (needed with tag ssl); nil
// files mean none.
type TLSSource func(c *config.Cluster) (*configurator.TLSFiles, error)

// ConfiguratorBundles is the BundleSource the daemon uses: package configurator's database
// bundle for a database (paths inside its slapos-db-partitions entry) and its ProxySQL
// bundle for a ProxySQL. tls may be nil. With job (an anonymous caller) a database bundle's
// dbjob.cnf holds job's login instead of the db-servers-credential and a ProxySQL bundle,
// which needs the ProxySQL admin and database credentials, is refused (ErrNeedsCredential).
func ConfiguratorBundles(tls TLSSource) BundleSource {
	return BundleFunc(func(_ context.Context, c *config.Cluster, t orchestrator.Target, job *JobLogin) ([]byte, error) {
		if job != nil && t.Kind != orchestrator.KindDatabase {
			return nil, fmt.Errorf("cluster %s: bundle of %s: %w", c.Name, t, ErrNeedsCredential)
		}
		var files *configurator.TLSFiles
		if tls != nil {
			var err error
			if files, err = tls(c); err != nil {
				return nil, fmt.Errorf("cluster %s: certificates: %w", c.Name, err)
			}
		}
		switch t.Kind {
		case orchestrator.KindDatabase:
			p, err := configurator.ParamsFromSettings(c.Name, &c.Settings, t.Index)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: bundle of %s: %w", c.Name, t, err)
			}
			p.TLS = files
			if job != nil {
				p.User, p.Password = job.User, job.Password
			}
			b, err := configurator.Bundle(p)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: bundle of %s: %w", c.Name, t, err)
			}
			return b, nil
		case orchestrator.KindProxySQL:
			p, err := configurator.ProxyParamsFromSettings(&c.Settings, t.Index)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: bundle of %s: %w", c.Name, t, err)
			}
			p.TLS = files
			b, err := configurator.ProxyBundle(p)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: bundle of %s: %w", c.Name, t, err)
			}
			return b, nil
		}
		return nil, fmt.Errorf("cluster %s: bundle of %s: %w", c.Name, t, orchestrator.ErrNotSupported)
	})
}
