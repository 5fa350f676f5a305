// Package probefarm is test support: a farm of lightweight MySQL-protocol endpoints that
// answer the statements of mariadb.Server.Probe like MariaDB 10.11 servers of GTID
// replication clusters would, without a mariadbd each. A thousand endpoints fit in one
// process, which lets benchmarks measure the monitor's cost at scale and lets unit tests
// run the real probe code against known answers.
//
// Each group of Options.ClusterSize endpoints is one cluster: its first endpoint is the
// master (read_only 0, one binlog dump thread per replica), the others are replicas whose
// SHOW ALL SLAVES STATUS row points at the master's port with both threads running.
//
// The farm recognises statements by normalised prefix (upper case, whitespace collapsed).
// A statement it does not know is answered with an error naming it and recorded (see
// Farm.Unknown), so that a change of the probe's SQL shows up as a failing test instead of
// a farm quietly answering something else.
//
// The endpoints are served by the MySQL-protocol listener of github.com/dolthub/vitess;
// authentication is mysql_native_password against one user and password.
package probefarm

import (
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/dolthub/vitess/go/mysql"
	vtlog "github.com/dolthub/vitess/go/vt/log"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"

	"replication-manager-pro/ipv6"
)

// Defaults of Options.
const (
	DefaultVersion = "10.11.19-MariaDB-log"
	DefaultHost    = "127.0.0.1"
)

// Options describes the farm.
type Options struct {
	User     string // login accepted by every endpoint; required
	Password string // its password ("" accepts an empty password only)
	// Version is @@version; the handshake advertises it as MariaDB does ("5.5.5-" prefix).
	Version string
	// ClusterSize is the number of endpoints per cluster (master first); 0 = all n.
	ClusterSize int
	// Host is the loopback address to listen on; default 127.0.0.1.
	Host string
	// BaseServerID is the @@server_id of the first endpoint (others follow); default 1.
	BaseServerID uint32
}

var quietVitess sync.Once

// Endpoint is one simulated server.
type Endpoint struct {
	Index    int
	Addr     ipv6.HostPort
	ServerID uint32
	Master   *Endpoint   // nil for a cluster's master
	Replicas []*Endpoint // replicas of a master; nil for a replica

	farm     *Farm
	listener *mysql.Listener

	mu       sync.Mutex
	readOnly bool
}

// IsMaster reports whether the endpoint is its cluster's master.
func (e *Endpoint) IsMaster() bool { return e.Master == nil }

// ReadOnly returns the endpoint's current @@read_only (SET GLOBAL read_only changes it).
func (e *Endpoint) ReadOnly() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.readOnly
}

// Farm is a set of endpoints serving the probe's statements.
type Farm struct {
	opt       Options
	started   time.Time
	endpoints []*Endpoint
	acceptWG  sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	conns   map[*trackedConn]struct{}
	connWG  sync.WaitGroup
	unknown []string
	queries uint64
}

// Start listens on n free ports of opt.Host and serves until Close.
func Start(n int, opt Options) (*Farm, error) {
	if n < 1 {
		return nil, fmt.Errorf("probefarm: %d endpoints", n)
	}
	if opt.User == "" {
		return nil, errors.New("probefarm: empty user")
	}
	if opt.Version == "" {
		opt.Version = DefaultVersion
	}
	if opt.ClusterSize <= 0 || opt.ClusterSize > n {
		opt.ClusterSize = n
	}
	if opt.Host == "" {
		opt.Host = DefaultHost
	}
	if opt.BaseServerID == 0 {
		opt.BaseServerID = 1
	}
	quietVitess.Do(func() {
		// The vitess listener logs every closed client connection through these
		// package-level hooks; a farm of a thousand endpoints would flood the output.
		discard := func(string, ...any) {}
		vtlog.Warningf, vtlog.Errorf, vtlog.Infof = discard, discard, discard
		discardln := func(...any) {}
		vtlog.Warning, vtlog.Error, vtlog.Info = discardln, discardln, discardln
	})
	f := &Farm{opt: opt, started: time.Now(), conns: map[*trackedConn]struct{}{}}
	auth := newAuthServer(opt.User, opt.Password)
	var master *Endpoint
	for i := 0; i < n; i++ {
		nl, err := net.Listen("tcp", net.JoinHostPort(opt.Host, "0"))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("probefarm: endpoint %d of %d: %w", i, n, err)
		}
		e := &Endpoint{
			Index:    i,
			Addr:     ipv6.HostPort{Host: opt.Host, Port: nl.Addr().(*net.TCPAddr).Port},
			ServerID: opt.BaseServerID + uint32(i),
			farm:     f,
		}
		if i%opt.ClusterSize == 0 {
			master = e
		} else {
			e.Master = master
			e.readOnly = true
			master.Replicas = append(master.Replicas, e)
		}
		l, err := mysql.NewListenerWithConfig(mysql.ListenerConfig{
			Listener:   &trackingListener{Listener: nl, farm: f},
			AuthServer: auth,
			Handler:    &handler{ep: e},
		})
		if err != nil {
			nl.Close()
			f.Close()
			return nil, fmt.Errorf("probefarm: endpoint %d: %w", i, err)
		}
		l.ServerVersion = "5.5.5-" + opt.Version
		e.listener = l
		f.endpoints = append(f.endpoints, e)
		f.acceptWG.Add(1)
		go func() {
			defer f.acceptWG.Done()
			l.Accept()
		}()
	}
	return f, nil
}

// Endpoints returns the endpoints in index order (masters at multiples of ClusterSize).
func (f *Farm) Endpoints() []*Endpoint { return f.endpoints }

// Addrs returns every endpoint's address in index order.
func (f *Farm) Addrs() []ipv6.HostPort {
	out := make([]ipv6.HostPort, len(f.endpoints))
	for i, e := range f.endpoints {
		out[i] = e.Addr
	}
	return out
}

// Unknown returns the statements the farm did not recognise (each was answered with an error).
func (f *Farm) Unknown() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.unknown...)
}

// Queries returns the number of statements answered so far.
func (f *Farm) Queries() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries
}

func (f *Farm) count(unknown string) {
	f.mu.Lock()
	f.queries++
	if unknown != "" && len(f.unknown) < 100 {
		f.unknown = append(f.unknown, unknown)
	}
	f.mu.Unlock()
}

// Close stops every listener, closes every client connection and returns once the
// goroutines that served them have ended. It is safe to call more than once.
func (f *Farm) Close() error {
	for _, e := range f.endpoints {
		e.listener.Close()
	}
	f.acceptWG.Wait()
	f.mu.Lock()
	f.closed = true
	conns := make([]*trackedConn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		// Close the socket under the listener's connection: its serving goroutine sees the
		// error, unwinds and closes the tracked connection last, which releases connWG.
		c.Conn.Close()
	}
	f.connWG.Wait()
	return nil
}

// trackingListener records every accepted connection so that Close can end them: the vitess
// listener's Close stops accepting but leaves established connections running.
type trackingListener struct {
	net.Listener
	farm *Farm
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		f := l.farm
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, farm: f}
		f.conns[tc] = struct{}{}
		f.connWG.Add(1)
		f.mu.Unlock()
		return tc, nil
	}
}

// trackedConn is released when its serving goroutine closes it, its last action.
type trackedConn struct {
	net.Conn
	farm *Farm
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.farm.mu.Lock()
		delete(c.farm.conns, c)
		c.farm.mu.Unlock()
		c.farm.connWG.Done()
	})
	return err
}

// authServer accepts one user with mysql_native_password.
type authServer struct {
	user    string
	empty   bool   // empty password: accept an empty scramble only
	hash2   []byte // SHA1(SHA1(password))
	methods []mysql.AuthMethod
}

func newAuthServer(user, password string) *authServer {
	a := &authServer{user: user, empty: password == ""}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	a.hash2 = h2[:]
	a.methods = []mysql.AuthMethod{mysql.NewMysqlNativeAuthMethod(a, a)}
	return a
}

func (a *authServer) AuthMethods() []mysql.AuthMethod { return a.methods }

func (a *authServer) DefaultAuthMethodDescription() mysql.AuthMethodDescription {
	return mysql.MysqlNativePassword
}

func (a *authServer) HandleUser(user string, remoteAddr net.Addr) bool { return true }

func (a *authServer) UserEntryWithHash(_ []*x509.Certificate, salt []byte, user string, authResponse []byte, remoteAddr net.Addr) (mysql.Getter, error) {
	ok := user == a.user
	if ok {
		if a.empty {
			ok = len(authResponse) == 0
		} else {
			ok = mysql.VerifyHashedMysqlNativePassword(authResponse, salt, a.hash2)
		}
	}
	if !ok {
		host := "127.0.0.1"
		if ta, isTCP := remoteAddr.(*net.TCPAddr); isTCP {
			host = ta.IP.String()
		}
		return nil, mysql.NewSQLError(mysql.ERAccessDeniedError, mysql.SSAccessDeniedError,
			"Access denied for user '%s'@'%s' (using password: %s)", user, host, yesNo(len(authResponse) > 0))
	}
	return userData{user}, nil
}

type userData struct{ user string }

func (u userData) Get() *querypb.VTGateCallerID { return &querypb.VTGateCallerID{Username: u.user} }

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}
