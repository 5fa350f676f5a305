package main

import (
	"context"
	"fmt"
	"hash/crc64"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/api"
	"replication-manager-pro/config"
	"replication-manager-pro/haproxy"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/orchestrator"
)

// Proxy states, as replication-manager names them.
const (
	proxyRunning = "ProxyRunning"
	proxySuspect = "Suspect"
	proxyFailed  = "Failed"
)

// proxyWatch follows the proxies of one cluster: each interval it connects to every proxy's
// address (a ProxySQL's admin port; an HAProxy's runtime API socket, the one its router
// drives); after
// failover-falsepositive-ping-counter failures in a row the proxy is Failed and its start is
// asked once from the cluster's orchestrator (SlapOS: the waitstart cookie the ProxySQL
// partition's need-start answers), until it answers again. Its goroutine ends with stop.
type proxyWatch struct {
	cluster  string
	settings config.Settings
	targets  []orchestrator.Target
	orch     orchestrator.Orchestrator // nil: no restart
	interval time.Duration
	maxFail  int
	log      logrus.FieldLogger

	// sockets are the HAProxys' runtime API sockets. HAProxy is driven through the socket in
	// its working directory, and its TCP API port listens on 127.0.0.1 only: dialing
	// haproxy-servers:haproxy-api-port misses it whenever haproxy-servers is not 127.0.0.1
	// (slapos simulate in network namespaces: the root partition's own address).
	sockets map[ipv6.HostPort]string

	mu    sync.Mutex
	state map[ipv6.HostPort]*proxyState

	cancel context.CancelFunc
	done   chan struct{}
}

type proxyState struct {
	state, prev  string
	fails        int
	startAsked   bool
	lastStartErr string
}

func startProxyWatch(c *config.Cluster, p orchestrator.Placement, o orchestrator.Orchestrator, log logrus.FieldLogger) *proxyWatch {
	interval := c.Settings.MonitoringTickerDuration()
	if interval < time.Second {
		interval = time.Second
	}
	w := &proxyWatch{cluster: c.Name, settings: c.Settings, targets: p.Proxies, orch: o, interval: interval,
		maxFail: max(c.Settings.FailoverFalsePositivePingCounter, 1), log: log, state: map[ipv6.HostPort]*proxyState{}}
	for _, t := range w.targets {
		w.state[t.Addr] = &proxyState{state: proxySuspect}
		if t.Kind == orchestrator.KindHAProxy {
			if hs, err := haproxy.SettingsFrom(c, t.Index); err == nil {
				if w.sockets == nil {
					w.sockets = map[ipv6.HostPort]string{}
				}
				w.sockets[t.Addr] = hs.Socket()
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.run(ctx)
	return w
}

func (w *proxyWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *proxyWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		for _, target := range w.targets {
			w.check(ctx, target)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *proxyWatch) check(ctx context.Context, t orchestrator.Target) {
	d := net.Dialer{Timeout: min(w.interval, 2*time.Second)}
	network, addr := "tcp", net.JoinHostPort(ipv6.Unbracket(t.Addr.Host), strconv.Itoa(t.Addr.Port))
	if sock := w.sockets[t.Addr]; sock != "" {
		network, addr = "unix", sock
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		conn.Close()
	}
	if ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	st := w.state[t.Addr]
	prev := st.state
	askStart := false
	if err == nil {
		st.fails, st.startAsked, st.state = 0, false, proxyRunning
	} else {
		st.fails++
		st.state = proxySuspect
		if st.fails >= w.maxFail {
			st.state = proxyFailed
			askStart = !st.startAsked && w.orch != nil
			st.startAsked = st.startAsked || askStart
		}
	}
	if st.state != prev {
		st.prev = prev
	}
	state := st.state
	w.mu.Unlock()
	if state != prev {
		l := w.log.WithField("proxy", t.String()).WithField("state", state)
		if state == proxyFailed {
			l.Warn("proxy failed")
		} else if prev != "" {
			l.Info("proxy state changed")
		}
	}
	if askStart {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := w.orch.StartProxy(sctx, t.Addr)
		cancel()
		if err != nil {
			w.log.WithField("proxy", t.String()).WithError(err).Error("failed proxy: start not requested")
			w.mu.Lock()
			w.state[t.Addr].startAsked = false // try again at the next check
			w.mu.Unlock()
			return
		}
		w.log.WithField("proxy", t.String()).WithField("orchestrator", w.orch.Name()).Warn("failed proxy: start requested through the orchestrator")
	}
}

// up tells whether a proxy runs: not Failed (a proxy never checked yet counts as running,
// as before this watch existed).
func (w *proxyWatch) up(t orchestrator.Target) bool {
	if w == nil {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.state[t.Addr]
	return !ok || st.state != proxyFailed
}

// proxyID is a proxy's id in the API: "px" and the CRC-64 (ECMA) of the cluster name, the
// proxy's host as configured and ":" its write port, as replication-manager computes it.
func proxyID(cluster string, t orchestrator.Target, s *config.Settings) string {
	return "px" + strconv.FormatUint(crc64.Checksum([]byte(cluster+t.Addr.HostBracketed()+":"+strconv.Itoa(writePort(t, s))), crcECMA), 10)
}

var crcECMA = crc64.MakeTable(crc64.ECMA)

func writePort(t orchestrator.Target, s *config.Settings) int {
	if t.Kind == orchestrator.KindHAProxy {
		return s.HAProxyWritePort
	}
	return s.ProxySQLPort
}

// list describes the cluster's proxies for topology/proxies.
func (w *proxyWatch) list() []api.Proxy {
	s := &w.settings
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]api.Proxy, 0, len(w.targets))
	for _, t := range w.targets {
		p := api.Proxy{ID: proxyID(w.cluster, t, s), Name: t.Addr.HostBracketed(), Type: string(t.Kind), Host: t.Addr.HostBracketed(),
			HostIPv6: t.IPv6Bind, Port: strconv.Itoa(t.Addr.Port), SlaposDatadir: t.Partition}
		switch t.Kind {
		case orchestrator.KindHAProxy:
			p.WritePort, p.ReadPort, p.ReadWritePort = s.HAProxyWritePort, s.HAProxyReadPort, s.HAProxyWritePort
		default:
			p.WritePort, p.ReadPort, p.ReadWritePort = s.ProxySQLPort, s.ProxySQLPort, s.ProxySQLPort
			p.WriterHostGroup, p.ReaderHostGroup = strconv.Itoa(s.ProxySQLWriterHostgroup), strconv.Itoa(s.ProxySQLReaderHostgroup)
		}
		if st := w.state[t.Addr]; st != nil {
			p.State, p.PrevState, p.FailCount = st.state, st.prev, st.fails
		}
		out = append(out, p)
	}
	return out
}

// Proxies implements api.ProxyControl.
func (s services) Proxies(_ context.Context, name string) ([]api.Proxy, error) {
	m, ok := s.fleet.Get(name)
	if !ok {
		return nil, fmt.Errorf("cluster %s not found", name)
	}
	w := s.orchs.watchOf(m.Monitor)
	if w == nil {
		return []api.Proxy{}, nil
	}
	return w.list(), nil
}

// ProxyAction implements api.ProxyControl: the proxy's start, stop, provision or
// unprovision through the cluster's orchestrator.
func (s services) ProxyAction(ctx context.Context, name, id, action string) error {
	m, o, err := s.member(name)
	if err != nil {
		return err
	}
	w := s.orchs.watchOf(m.Monitor)
	if w == nil {
		return api.ErrUnknownProxy
	}
	for _, t := range w.targets {
		if proxyID(w.cluster, t, &w.settings) != id {
			continue
		}
		switch action {
		case "start":
			return o.StartProxy(ctx, t.Addr)
		case "stop":
			return o.StopProxy(ctx, t.Addr)
		case "provision":
			return o.ProvisionProxy(ctx, t.Addr)
		case "unprovision":
			return o.UnprovisionProxy(ctx, t.Addr)
		}
		return fmt.Errorf("unknown proxy action %q", action)
	}
	return api.ErrUnknownProxy
}

// proxyUp is the SlapOS handlers' ProxyUp: need-stop and need-restart of a proxy answer only
// while it runs.
func (s services) proxyUp(name string, t orchestrator.Target) bool {
	m, ok := s.fleet.Get(name)
	if !ok {
		return true
	}
	return s.orchs.watchOf(m.Monitor).up(t)
}
