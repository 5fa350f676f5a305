package cluster

import (
	"context"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/topology"
)

// masterWatch keeps one query running on the master (mariadb.Server.Watch) and wakes the
// monitor's loop the moment it fails: a killed master is probed at once rather than at
// the next tick, which is half a tick sooner on average. Owned by the monitor: started by
// keepWatch under tickMu, stopped by stopWatch (Close).
type masterWatch struct {
	addr   ipv6.HostPort
	cancel context.CancelFunc
	done   chan struct{}
}

// keepWatch runs a watch on the snapshot's master, replacing the one on a former master.
// tickMu is held.
func (m *Monitor) keepWatch(snap *topology.Snapshot) {
	ms, ok := snap.MasterServer()
	if !ok || ms.State != topology.StateMaster {
		return
	}
	if w := m.watch; w != nil {
		select {
		case <-w.done: // ended (the master died or killed it): start again if still master
		default:
			if ipv6.SameAddr(w.addr, ms.Addr) {
				return
			}
		}
		m.stopWatchLocked()
	}
	s, err := m.sqlServer(ms.Addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &masterWatch{addr: ms.Addr, cancel: cancel, done: make(chan struct{})}
	m.watch = w
	go func() {
		defer close(w.done)
		start := time.Now()
		if err := s.Watch(ctx); err != nil {
			if time.Since(start) < 50*time.Millisecond {
				// Failed at once (a dying server, too many connections): no storm of
				// wake-ups, the ticks carry on.
				return
			}
			m.wakeUp()
		}
	}()
}

func (m *Monitor) stopWatchLocked() {
	if w := m.watch; w != nil {
		w.cancel()
		<-w.done
		m.watch = nil
	}
}

// wakeUp asks the loop for a tick now.
func (m *Monitor) wakeUp() {
	m.wakeOnce.Do(func() { m.wake = make(chan struct{}, 1) })
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// wakeChan is the channel the loop waits on besides its timer.
func (m *Monitor) wakeChan() <-chan struct{} {
	m.wakeOnce.Do(func() { m.wake = make(chan struct{}, 1) })
	return m.wake
}
