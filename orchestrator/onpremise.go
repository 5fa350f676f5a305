package orchestrator

import (
	"context"
	"fmt"

	"replication-manager-pro/config"
	"replication-manager-pro/topology"
)

// OnPremiseName is the prov-orchestrator value of OnPremise.
const OnPremiseName = "onpremise"

func init() {
	Register(OnPremiseName, func(Deps) (Orchestrator, error) { return OnPremise{}, nil })
}

// OnPremise manages servers someone else installed and runs: provisioning is a no-op that
// succeeds, the cluster always counts as provisioned, a database stops with SQL SHUTDOWN,
// and starting anything is not supported (replication-manager starts them over SSH; this
// product has no SSH agent).
type OnPremise struct{}

var _ Orchestrator = OnPremise{}

func (OnPremise) Name() string { return OnPremiseName }

func (OnPremise) Placement(c *config.Cluster) (Placement, error) { return Targets(c) }

func (OnPremise) ProvisionDatabase(context.Context, *config.Cluster, Target) error   { return nil }
func (OnPremise) UnprovisionDatabase(context.Context, *config.Cluster, Target) error { return nil }
func (OnPremise) ProvisionProxy(context.Context, *config.Cluster, Target) error      { return nil }
func (OnPremise) UnprovisionProxy(context.Context, *config.Cluster, Target) error    { return nil }

func (OnPremise) StartDatabase(_ context.Context, c *config.Cluster, db Target) error {
	return fmt.Errorf("cluster %s: start %s: %w", c.Name, db, ErrNotSupported)
}

func (OnPremise) StopDatabase(ctx context.Context, c *config.Cluster, db Target, snap *topology.Snapshot) error {
	if err := SQLShutdown(ctx, c, db.Addr, snap); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	return nil
}

func (OnPremise) StartProxy(_ context.Context, c *config.Cluster, p Target) error {
	return fmt.Errorf("cluster %s: start %s: %w", c.Name, p, ErrNotSupported)
}

func (OnPremise) StopProxy(_ context.Context, c *config.Cluster, p Target) error {
	return fmt.Errorf("cluster %s: stop %s: %w", c.Name, p, ErrNotSupported)
}

// IsProvisioned is always true on premise, as in replication-manager.
func (OnPremise) IsProvisioned(*config.Cluster, *topology.Snapshot, ProxyUp) (bool, error) {
	return true, nil
}
