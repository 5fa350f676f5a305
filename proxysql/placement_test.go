package proxysql

import (
	"testing"

	"replication-manager-pro/router"
	"replication-manager-pro/topology"
)

func TestDesired(t *testing.T) {
	hg := Hostgroups{Writer: 0, Reader: 1, Offline: 666}
	d := RowDefaults{Weight: 1}
	for _, c := range []struct {
		name   string
		read   ReadPolicy
		mutate func(*topology.Snapshot)
		want   []string
	}{
		{"default", ReadPolicy{OnMasterNoSlave: true}, nil,
			[]string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"read on master", ReadPolicy{OnMaster: true}, nil,
			[]string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"no replica can read: master reads", ReadPolicy{OnMasterNoSlave: true}, func(s *topology.Snapshot) {
			s.Servers[1].State, s.Servers[1].Reachable = topology.StateFailed, false
			s.Servers[2].Maintenance = true
		}, []string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 OFFLINE_SOFT", "hg=666 10.0.0.4:3306 OFFLINE_SOFT", "hg=666 [2001:db8::2]:3306 OFFLINE_SOFT"}},
		{"no replica, no read on master", ReadPolicy{}, func(s *topology.Snapshot) {
			s.Servers[1].State = topology.StateSlaveErr
			s.Servers[2].State = topology.StateSlaveErr
		}, []string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 OFFLINE_SOFT", "hg=1 [2001:db8::2]:3306 OFFLINE_SOFT", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"late and lagging replicas drain", ReadPolicy{OnMasterNoSlave: true}, func(s *topology.Snapshot) {
			s.Servers[1].State = topology.StateSlaveLate
			lag := int64(31)
			s.Servers[2].Replications[0].Lag = &lag
		}, []string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 OFFLINE_SOFT", "hg=1 [2001:db8::2]:3306 OFFLINE_SOFT", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"suspect master keeps the writes", ReadPolicy{}, func(s *topology.Snapshot) {
			s.Servers[0].State, s.Servers[0].Reachable = topology.StateSuspect, false
		}, []string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"ignored replica is offline", ReadPolicy{}, func(s *topology.Snapshot) { s.Servers[2].Ignored = true },
			[]string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.3:3306 OFFLINE_SOFT", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"ignored master still writes", ReadPolicy{}, func(s *topology.Snapshot) { s.Servers[0].Ignored = true },
			[]string{"hg=0 10.0.0.1:3306 ONLINE", "hg=1 10.0.0.3:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"master in maintenance drains", ReadPolicy{}, func(s *topology.Snapshot) { s.Servers[0].Maintenance = true },
			[]string{"hg=0 10.0.0.1:3306 OFFLINE_SOFT", "hg=1 10.0.0.3:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
		{"master in maintenance, reads on master drain too", ReadPolicy{OnMaster: true}, func(s *topology.Snapshot) { s.Servers[0].Maintenance = true },
			[]string{"hg=0 10.0.0.1:3306 OFFLINE_SOFT", "hg=1 10.0.0.1:3306 OFFLINE_SOFT", "hg=1 10.0.0.3:3306 ONLINE", "hg=1 [2001:db8::2]:3306 ONLINE", "hg=666 10.0.0.4:3306 OFFLINE_SOFT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := snapA()
			if c.mutate != nil {
				c.mutate(s)
			}
			rows, ok := Desired(router.IntentFor(s, c.read.IntentOptions(30, nil)), hg, d)
			if !ok {
				t.Fatal("no master")
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.String())
			}
			same(t, "rows", got, c.want)
		})
	}
	if _, ok := Desired(router.IntentFor(&topology.Snapshot{Master: -1}, router.IntentOptions{}), hg, d); ok {
		t.Error("desired rows without a master")
	}
}
