package cluster

import (
	"context"
	"fmt"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// MariaDBDialer returns the Dialer of real servers: one mariadb.Server (a small connection
// pool reused tick after tick) per address.
func MariaDBDialer(user, password string, opt mariadb.Options) Dialer {
	return func(addr ipv6.HostPort) (ServerConn, error) {
		s, err := mariadb.Open(addr, user, password, opt)
		if err != nil {
			return nil, err
		}
		return mariadbConn{s}, nil
	}
}

type mariadbConn struct{ s *mariadb.Server }

func (c mariadbConn) Close() error { return c.s.Close() }

func (c mariadbConn) SetReadOnly(ctx context.Context, on bool) error { return c.s.SetReadOnly(ctx, on) }

func (c mariadbConn) SetHeartbeatPeriod(ctx context.Context, channel string, period time.Duration) error {
	return c.s.SetHeartbeatPeriod(ctx, channel, period)
}

func (c mariadbConn) Isolate(ctx context.Context) error { return c.s.Isolate(ctx) }

func (c mariadbConn) Probe(ctx context.Context) (topology.Server, error) {
	st, err := c.s.Probe(ctx)
	if err != nil && ctx.Err() == nil && !mariadb.IsAccessDenied(err) {
		// A pooled connection the server closed (killed during a switchover, wait_timeout)
		// fails once; a dead server fails again at once, so one retry costs nothing.
		st, err = c.s.Probe(ctx)
	}
	if err != nil {
		if mariadb.IsAccessDenied(err) {
			return topology.Server{}, fmt.Errorf("%w: %v", ErrAccessDenied, err)
		}
		return topology.Server{}, err
	}
	return FactsFromStatus(st), nil
}

// FactsFromStatus maps a probe's status to the model's server facts.
func FactsFromStatus(st *mariadb.Status) topology.Server {
	s := topology.Server{
		Version:           st.Version.Raw,
		ServerID:          st.ServerID,
		ReadOnly:          st.ReadOnly,
		LogBin:            st.LogBin,
		LogSlaveUpdates:   st.LogSlaveUpdates,
		GTIDStrict:        st.GTIDStrictMode,
		CurrentPos:        st.GTIDCurrentPos,
		BinlogPos:         st.GTIDBinlogPos,
		SlavePos:          st.GTIDSlavePos,
		SemiSyncMaster:    st.SemiSyncMasterEnabled && st.SemiSyncMasterStatus,
		SemiSyncReplica:   st.SemiSyncSlaveEnabled && st.SemiSyncSlaveStatus,
		BinlogDumpThreads: st.ConnectedReplicas,
	}
	for _, r := range st.Replications {
		s.Replications = append(s.Replications, topology.Replication{
			Channel:            r.ConnectionName,
			Source:             ipv6.HostPort{Host: ipv6.Unbracket(r.MasterHost), Port: r.MasterPort},
			SourceServerID:     r.MasterServerID,
			IO:                 topology.ThreadState(r.SlaveIORunning),
			SQL:                topology.ThreadState(r.SlaveSQLRunning),
			Lag:                r.SecondsBehindMaster,
			LastIOErrno:        r.LastIOErrno,
			LastIOError:        r.LastIOError,
			LastSQLErrno:       r.LastSQLErrno,
			LastSQLError:       r.LastSQLError,
			UsingGTID:          r.UsingGtid,
			IOPos:              r.GtidIOPos,
			ReceivedHeartbeats: r.SlaveReceivedHeartbeats,
			HeartbeatPeriod:    r.SlaveHeartbeatPeriod.Seconds(),
			SQLDelay:           r.SQLDelay,
		})
	}
	return s
}
