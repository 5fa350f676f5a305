package main

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
)

// services starts and stops databases through each cluster's orchestrator (the API's server
// actions start and stop).
type services struct {
	fleet *cluster.Fleet
	log   *logrus.Logger
}

func (s services) target(name string, addr ipv6.HostPort) (*cluster.Member, orchestrator.Orchestrator, orchestrator.Target, error) {
	m, ok := s.fleet.Get(name)
	if !ok {
		return nil, nil, orchestrator.Target{}, fmt.Errorf("cluster %s not found", name)
	}
	o, err := orchestrator.New(m.Config.Settings.ProvOrchestrator, orchestrator.Deps{Log: s.log})
	if err != nil {
		return nil, nil, orchestrator.Target{}, err
	}
	c := m.Config
	p, err := o.Placement(&c)
	if err != nil {
		return nil, nil, orchestrator.Target{}, err
	}
	for _, t := range p.Databases {
		if ipv6.SameAddr(t.Addr, addr) {
			return m, o, t, nil
		}
	}
	return nil, nil, orchestrator.Target{}, fmt.Errorf("cluster %s: no database %s", name, addr)
}

func (s services) StartDatabase(ctx context.Context, name string, addr ipv6.HostPort) error {
	m, o, t, err := s.target(name, addr)
	if err != nil {
		return err
	}
	c := m.Config
	return o.StartDatabase(ctx, &c, t)
}

func (s services) StopDatabase(ctx context.Context, name string, addr ipv6.HostPort) error {
	m, o, t, err := s.target(name, addr)
	if err != nil {
		return err
	}
	c := m.Config
	return o.StopDatabase(ctx, &c, t, m.Monitor.Snapshot())
}
