package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// Per-server bound of the replication cleanup and bootstrap statements.
const replicationStepTimeout = 30 * time.Second

// errExistingSetup refuses a bootstrap over a running replication topology.
var errExistingSetup = errors.New("Environment already has an existing master/slave setup")

// withPausedMonitor runs f with the cluster's enforcement paused (so the monitor does not
// fight the changes), then publishes a fresh snapshot.
func withPausedMonitor(ctx context.Context, m *cluster.Member, f func() error) error {
	m.Monitor.Pause(true)
	err := f()
	m.Monitor.Pause(false)
	m.Monitor.Tick(ctx)
	return err
}

// handleReplicationCleanup: on every server RESET MASTER, STOP ALL SLAVES, RESET SLAVE ALL
// of every connection, gtid_slave_pos=”. 200, or 500 with the first error.
func (s *Server) handleReplicationCleanup(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx, done, ok := s.exclusive(w, r, rc)
	if !ok {
		return
	}
	defer done()
	err := withPausedMonitor(ctx, rc.member, func() error { return cleanupReplication(ctx, rc.member) })
	if err != nil {
		http.Error(w, "Replication cleanup failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", rc.member.Name).WithField("user", rc.user).Info("replication cleaned up through the API")
	w.WriteHeader(http.StatusOK)
}

func cleanupReplication(ctx context.Context, m *cluster.Member) error {
	hosts, err := m.Config.Settings.Hosts()
	if err != nil {
		return fmt.Errorf("db-servers-hosts: %w", err)
	}
	snap := m.Monitor.Snapshot()
	for _, h := range hosts {
		channels := map[string]bool{"": true}
		if snap != nil {
			if srv, ok := snap.Find(h); ok {
				for _, rep := range srv.Replications {
					channels[rep.Channel] = true
				}
			}
		}
		if err := onServer(ctx, m, h, func(ctx context.Context, db *mariadb.Server) error {
			if err := db.StopAllReplicas(ctx); err != nil {
				return err
			}
			for ch := range channels {
				if err := db.ResetReplicaAll(ctx, ch); err != nil && ch != "" {
					return err
				}
			}
			if _, err := db.DB().ExecContext(ctx, "RESET MASTER"); err != nil {
				return fmt.Errorf("reset master: %w", err)
			}
			return db.SetGTIDSlavePos(ctx, nil)
		}); err != nil {
			return err
		}
	}
	return nil
}

// onServer opens a short-lived handle to one server and runs f under a deadline.
func onServer(ctx context.Context, m *cluster.Member, h ipv6.HostPort, f func(context.Context, *mariadb.Server) error) error {
	db, err := cluster.OpenServer(&m.Config, h)
	if err != nil {
		return err
	}
	defer db.Close()
	sctx, cancel := context.WithTimeout(ctx, replicationStepTimeout)
	defer cancel()
	if err := f(sctx, db); err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	return nil
}

// handleReplicationBootstrap sets up master-slave GTID replication on servers that have
// none: the master is the first db-servers-prefered-master, else the first host.
func (s *Server) handleReplicationBootstrap(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if topo := param(r, "topology"); topo != "master-slave" {
		http.Error(w, "Topology not supported: "+topo+" (only master-slave)", http.StatusNotImplemented)
		return
	}
	ctx, done, ok := s.exclusive(w, r, rc)
	if !ok {
		return
	}
	defer done()
	err := withPausedMonitor(ctx, rc.member, func() error { return bootstrapMasterSlave(ctx, rc.member) })
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.log.WithField("cluster", rc.member.Name).WithField("user", rc.user).Info("master-slave replication bootstrapped through the API")
	w.WriteHeader(http.StatusOK)
}

func bootstrapMasterSlave(ctx context.Context, m *cluster.Member) error {
	st := &m.Config.Settings
	hosts, err := st.Hosts()
	if err != nil {
		return fmt.Errorf("db-servers-hosts: %w", err)
	}
	if len(hosts) == 0 {
		return errors.New("db-servers-hosts is empty")
	}
	snap := m.Monitor.Tick(ctx)
	if snap != nil {
		for _, srv := range snap.Servers {
			if srv.IsReplica() {
				return errExistingSetup
			}
		}
	}
	master := hosts[0]
	pref, err := st.PreferedMasters()
	if err != nil {
		return fmt.Errorf("db-servers-prefered-master: %w", err)
	}
	if len(pref) > 0 {
		if !contains(hosts, pref[0]) {
			return errors.New("Preferred master could not be found in existing servers")
		}
		master = pref[0]
	}
	mc, err := cluster.MonitorConfigFrom(&m.Config)
	if err != nil {
		return err
	}
	ex := mc.Failover.Exec
	var pos gtid.List
	if err := onServer(ctx, m, master, func(ctx context.Context, db *mariadb.Server) error {
		if err := db.SetReadOnly(ctx, false); err != nil {
			return err
		}
		var raw string
		if err := db.DB().QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_current_pos").Scan(&raw); err != nil {
			return fmt.Errorf("read gtid_current_pos: %w", err)
		}
		pos, err = gtid.Parse(raw)
		return err
	}); err != nil {
		return fmt.Errorf("master %w", err)
	}
	ignoredRO, _ := st.HostList("db-servers-ignored-readonly")
	for _, h := range hosts {
		if h == master {
			continue
		}
		err := onServer(ctx, m, h, func(ctx context.Context, db *mariadb.Server) error {
			if err := db.StopAllReplicas(ctx); err != nil {
				return err
			}
			if err := db.SetGTIDSlavePos(ctx, pos); err != nil {
				return err
			}
			if err := db.ChangeMaster(ctx, mariadb.ChangeMasterOptions{
				Channel: st.ReplicationSourceName, Host: master, User: ex.ReplUser, Password: ex.ReplPassword,
				UseGTID: mariadb.GTIDSlavePos, SSL: ex.ReplSSL, HeartbeatPeriod: ex.HeartbeatPeriod, ConnectRetry: ex.ConnectRetry,
			}); err != nil {
				return err
			}
			if err := db.StartReplica(ctx, st.ReplicationSourceName); err != nil {
				return err
			}
			if contains(ignoredRO, h) {
				return nil
			}
			return db.SetReadOnly(ctx, true)
		})
		if err != nil {
			return fmt.Errorf("replica %w", err)
		}
	}
	return nil
}
