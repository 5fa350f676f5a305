package api

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMaxConnections applies when api-max-connections is not positive.
const defaultMaxConnections = 512

// limitListener holds at most max connections open. When a new connection arrives at the
// limit, the connection that has waited longest without a request in progress (a fresh
// connection that sent no request yet, or an idle keep-alive one) is closed to make room;
// only when every held connection is serving a request does the new one wait for a slot.
//
// A blocking limit alone (golang.org/x/net/netutil.LimitListener) does not survive an
// idle flood: thousands of connections that never send a byte fill the slots until their
// read deadline (10 s), and a real request queues behind all of them. Without any limit
// the process runs out of file descriptors and stops accepting at all. Evicting the
// stalest connection keeps the newest ones, which are the ones a real client is waiting
// on, served at once.
//
// The http.Server serving it must report connection states with track (its ConnState).
type limitListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns *list.List // *trackedConn, least recently changed state first
	freed chan struct{}

	closeOnce sync.Once
	closed    chan struct{}
	evicted   atomic.Int64
}

func newLimitListener(l net.Listener, max int) *limitListener {
	if max <= 0 {
		max = defaultMaxConnections
	}
	return &limitListener{Listener: l, max: max, conns: list.New(), freed: make(chan struct{}, 1), closed: make(chan struct{})}
}

// trackedConn is one held connection and what the server last said of it.
type trackedConn struct {
	net.Conn
	l     *limitListener
	el    *list.Element
	state http.ConnState // under l.mu
	held  bool           // under l.mu: in l.conns
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection: the server uses it to let a client read an
// error answer (413...) before the connection goes.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		l.mu.Lock()
		if l.conns.Len() < l.max {
			tc := &trackedConn{Conn: c, l: l, state: http.StateNew, held: true}
			tc.el = l.conns.PushBack(tc)
			l.mu.Unlock()
			return tc, nil
		}
		victim := l.stalestLocked()
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.Close() // frees its slot now
			continue
		}
		// Every held connection is serving a request: wait for one to end or go idle.
		t := time.NewTimer(time.Second)
		select {
		case <-l.freed:
		case <-t.C:
		case <-l.closed:
			t.Stop()
			c.Close()
			return nil, net.ErrClosed
		}
		t.Stop()
	}
}

// stalestLocked returns the held connection that changed state longest ago and has no
// request in progress, or nil.
func (l *limitListener) stalestLocked() *trackedConn {
	for el := l.conns.Front(); el != nil; el = el.Next() {
		if tc := el.Value.(*trackedConn); tc.state == http.StateNew || tc.state == http.StateIdle {
			return tc
		}
	}
	return nil
}

func (l *limitListener) release(c *trackedConn) {
	l.mu.Lock()
	l.conns.Remove(c.el)
	c.held = false
	l.mu.Unlock()
	l.signal()
}

func (l *limitListener) signal() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// track is the http.Server's ConnState hook: it records each held connection's state (a
// TLS connection is unwrapped to the held one).
func (l *limitListener) track(c net.Conn, st http.ConnState) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	tc, ok := c.(*trackedConn)
	if !ok || tc.l != l {
		return
	}
	l.mu.Lock()
	if tc.held {
		tc.state = st
		l.conns.MoveToBack(tc.el)
	}
	l.mu.Unlock()
	if st == http.StateIdle {
		l.signal()
	}
}

// open returns the number of held connections.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns.Len()
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
