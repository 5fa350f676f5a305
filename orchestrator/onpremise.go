package orchestrator

import (
	"context"
	"fmt"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// OnPremiseName is the prov-orchestrator value of OnPremise.
const OnPremiseName = "onpremise"

func init() {
	Register(OnPremiseName, func(c *config.Cluster, _ Deps) (Orchestrator, error) { return NewOnPremise(c) })
}

// OnPremise manages servers someone else installed and runs: provisioning is a no-op that
// succeeds, the cluster always counts as provisioned, a database stops with SQL SHUTDOWN,
// and starting anything is not supported (replication-manager starts them over SSH; this
// product has no SSH agent).
type OnPremise struct {
	placement Placement
	stop      SQLStop
}

var _ Orchestrator = (*OnPremise)(nil)

// NewOnPremise builds the on-premise orchestrator of a cluster: db-servers-hosts (and the
// proxy lists) and db-servers-credential must parse.
func NewOnPremise(c *config.Cluster) (*OnPremise, error) {
	p, err := Targets(c)
	if err != nil {
		return nil, err
	}
	stop, err := SQLStopFrom(&c.Settings)
	if err != nil {
		return nil, err
	}
	return &OnPremise{placement: p, stop: stop}, nil
}

func (o *OnPremise) Name() string { return OnPremiseName }

func (o *OnPremise) Placement() Placement { return o.placement.Clone() }

func (o *OnPremise) ProvisionDatabase(_ context.Context, db ipv6.HostPort) error {
	_, err := o.placement.Database("provision", db)
	return err
}

func (o *OnPremise) UnprovisionDatabase(_ context.Context, db ipv6.HostPort) error {
	_, err := o.placement.Database("unprovision", db)
	return err
}

func (o *OnPremise) ProvisionProxy(_ context.Context, p ipv6.HostPort) error {
	_, err := o.placement.Proxy("provision", p)
	return err
}

func (o *OnPremise) UnprovisionProxy(_ context.Context, p ipv6.HostPort) error {
	_, err := o.placement.Proxy("unprovision", p)
	return err
}

func (o *OnPremise) StartDatabase(_ context.Context, db ipv6.HostPort) error {
	t, err := o.placement.Database("start", db)
	if err != nil {
		return err
	}
	return fmt.Errorf("cluster %s: start %s: %w", o.placement.Cluster, t, ErrNotSupported)
}

func (o *OnPremise) StopDatabase(ctx context.Context, db ipv6.HostPort, snap *topology.Snapshot) error {
	t, err := o.placement.Database("stop", db)
	if err != nil {
		return err
	}
	if err := o.stop.Stop(ctx, t.Addr, snap); err != nil {
		return fmt.Errorf("cluster %s: %w", o.placement.Cluster, err)
	}
	return nil
}

func (o *OnPremise) StartProxy(_ context.Context, p ipv6.HostPort) error {
	t, err := o.placement.Proxy("start", p)
	if err != nil {
		return err
	}
	return fmt.Errorf("cluster %s: start %s: %w", o.placement.Cluster, t, ErrNotSupported)
}

func (o *OnPremise) StopProxy(_ context.Context, p ipv6.HostPort) error {
	t, err := o.placement.Proxy("stop", p)
	if err != nil {
		return err
	}
	return fmt.Errorf("cluster %s: stop %s: %w", o.placement.Cluster, t, ErrNotSupported)
}

// IsProvisioned is always true on premise, as in replication-manager.
func (o *OnPremise) IsProvisioned(*topology.Snapshot, ProxyUp) (bool, error) { return true, nil }
