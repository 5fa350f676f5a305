package orchestrator

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-sql-driver/mysql"

	"replication-manager-pro/config"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// ShutdownStatement is the statement that stops a database: a MariaDB master from 10.4 on
// waits for its replicas to receive every binary log event (SHUTDOWN WAIT FOR ALL SLAVES),
// so a planned stop loses no transaction; any other server gets a plain SHUTDOWN.
func ShutdownStatement(isMaster bool, v mariadb.Version) string {
	if isMaster && v.MariaDB && v.AtLeast(10, 4, 0) {
		return "SHUTDOWN WAIT FOR ALL SLAVES"
	}
	return "SHUTDOWN"
}

// StopFunc stops the database at addr; snap (may be nil) tells whether it is the master and
// its version. SQLStop.Stop is one; tests substitute their own.
type StopFunc func(ctx context.Context, addr ipv6.HostPort, snap *topology.Snapshot) error

// SQLStop stops a cluster's databases with SQL, with the cluster's administration account.
type SQLStop struct {
	User, Password string
	ConnectTimeout time.Duration
}

// SQLStopFrom reads db-servers-credential and db-servers-connect-timeout.
func SQLStopFrom(s *config.Settings) (SQLStop, error) {
	cred, err := s.DBCredential()
	if err != nil {
		return SQLStop{}, fmt.Errorf("db-servers-credential: %w", err)
	}
	return SQLStop{User: cred.User, Password: cred.Password,
		ConnectTimeout: time.Duration(s.DBServersConnectTimeout) * time.Second}, nil
}

// Stop stops the database at addr with SQL. Whether it is the master and its version come
// from snap when it knows them, else the version is asked. It returns once the server
// acknowledged the statement (or dropped the connection doing so).
func (q SQLStop) Stop(ctx context.Context, addr ipv6.HostPort, snap *topology.Snapshot) error {
	srv, err := mariadb.Open(addr, q.User, q.Password, mariadb.Options{ConnectTimeout: q.ConnectTimeout, MaxOpenConns: 1})
	if err != nil {
		return fmt.Errorf("stop %s: %w", addr, err)
	}
	defer srv.Close()
	isMaster, version := false, ""
	if m, ok := snap.MasterServer(); ok && ipv6.SameAddr(m.Addr, addr) {
		isMaster = true
	}
	if s, ok := snap.Find(addr); ok {
		version = s.Version
	}
	v := mariadb.ParseVersion(version)
	if version == "" && isMaster {
		if v, err = srv.Version(ctx); err != nil {
			return fmt.Errorf("stop %s: %w", addr, err)
		}
	}
	stmt := ShutdownStatement(isMaster, v)
	if _, err := srv.DB().ExecContext(ctx, stmt); err != nil && !connectionLost(err) {
		return fmt.Errorf("stop %s: %s: %w", addr, stmt, err)
	}
	return nil
}

// connectionLost reports the errors a server shutting down answers with: it may close the
// connection before or after its OK packet.
func connectionLost(err error) bool {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1053 // server shutdown in progress
}
