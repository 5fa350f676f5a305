package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/gtid"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// SaveConfig says how the transactions of a diverged former master are saved: read from
// its binary log by mariadb-binlog, into Dir.
type SaveConfig struct {
	Binary   string // backup-mysqlbinlog-path; "" finds mariadb-binlog in PATH
	User     string // the database credential
	Password string
	Dir      string // <monitoring-datadir>/<cluster>/diverged
	Timeout  time.Duration
}

// saveDiverged saves, once per former master, what it committed that the cluster never
// received: writes it acknowledged to clients (a master that froze and resumed, or died
// with unreplicated commits) that a failover left behind. They are reported as lost with
// the file's name, never dropped silently. Called after a tick, without tickMu.
func (m *Monitor) saveDiverged(ctx context.Context, snap *topology.Snapshot) {
	sc := m.cfg.SaveDiverged
	if sc == nil {
		return
	}
	h := m.History()
	for _, p := range snap.Problems {
		if p.Code != topology.FormerMasterDiverged {
			continue
		}
		srv := serverNamed(snap, p.Server)
		if srv == nil || !srv.Reachable || time.Now().Before(m.saveRetry[srv.Addr].next) {
			continue
		}
		var fm *FormerMaster
		for i := range h.FormerMasters {
			if ipv6.SameAddr(h.FormerMasters[i].Addr, srv.Addr) {
				fm = &h.FormerMasters[i]
			}
		}
		if fm == nil || fm.Saved != "" {
			continue
		}
		extra := gtid.Errant(srv.CurrentPos, fm.PromotionPos)
		file := filepath.Join(sc.Dir, fmt.Sprintf("%s-%s.sql", strings.NewReplacer(":", "_", "[", "", "]", "").Replace(srv.Addr.String()), time.Now().UTC().Format("20060102T150405")))
		err := m.saveFrom(ctx, srv.Addr, mariadb.SaveOptions{Binary: sc.Binary, User: sc.User, Password: sc.Password, After: fm.PromotionPos, File: file})
		log := m.log.WithFields(logrus.Fields{"server": srv.Addr.String(), "gtids": extra.String()})
		if err != nil {
			// Tried again, later and later: the first try can meet a connection the old
			// master's own fence just ended, or a server still starting.
			a := m.saveRetry[srv.Addr]
			a.failures++
			a.next = time.Now().Add(saveBackoff(a.failures))
			if m.saveRetry == nil {
				m.saveRetry = map[ipv6.HostPort]saveAttempt{}
			}
			m.saveRetry[srv.Addr] = a
			log.WithError(err).WithField("attempt", a.failures).Error("transactions of the diverged former master not saved; trying again")
			if a.failures == 1 { // one event, not one per attempt
				m.observe(ActionEvent{Kind: ObsDataLoss, Server: srv.Addr.String(), Error: err.Error(),
					Message: fmt.Sprintf("transactions lost: former master %s holds %s, never received by the cluster; saving them failed, trying again", srv.Addr, extra)})
			}
			continue
		}
		delete(m.saveRetry, srv.Addr)
		m.setSaved(srv.Addr, file)
		log.WithField("file", file).Warn("transactions of the diverged former master saved")
		m.observe(ActionEvent{Kind: ObsDataLoss, Server: srv.Addr.String(),
			Message: fmt.Sprintf("transactions lost: former master %s holds %s, never received by the cluster; saved to %s", srv.Addr, extra, file)})
	}
}

// saveAttempt is a failed save of a former master's transactions: how many so far, and
// when to try again.
type saveAttempt struct {
	failures int
	next     time.Time
}

// saveBackoff is the wait after the n-th failed save: 2 s, doubling, at most 5 min.
func saveBackoff(n int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

func (m *Monitor) saveFrom(ctx context.Context, addr ipv6.HostPort, o mariadb.SaveOptions) error {
	m.tickMu.Lock()
	s, err := m.sqlServer(addr)
	m.tickMu.Unlock()
	if err != nil {
		return err
	}
	timeout := m.cfg.SaveDiverged.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.SaveTransactions(ctx, o)
}

func (m *Monitor) setSaved(addr ipv6.HostPort, file string) {
	h := m.History()
	for i := range h.FormerMasters {
		if ipv6.SameAddr(h.FormerMasters[i].Addr, addr) {
			h.FormerMasters[i].Saved = file
		}
	}
	m.setHistory(h)
}
