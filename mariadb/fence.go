package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// SetHeartbeatPeriod makes a replication connection expect its source's heartbeat every
// period: STOP SLAVE, CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD (the one option named, the
// others are kept), START SLAVE. The threads stop for the few milliseconds this takes;
// with GTID the connection continues from its own position.
func (s *Server) SetHeartbeatPeriod(ctx context.Context, channel string, period time.Duration) error {
	if period <= 0 || period > maxHeartbeat {
		return fmt.Errorf("heartbeat period %v out of range (0, %v]", period, maxHeartbeat)
	}
	ch, err := channelClause(channel)
	if err != nil {
		return fmt.Errorf("heartbeat period on %s: %w", s.addr, err)
	}
	if err := s.StopReplica(ctx, channel); err != nil {
		return err
	}
	// The period is a number formatted here, never input text.
	q := "CHANGE MASTER" + ch + " TO MASTER_HEARTBEAT_PERIOD=" + strconv.FormatFloat(period.Round(time.Millisecond).Seconds(), 'f', -1, 64)
	cerr := s.exec(ctx, "heartbeat period", q)
	// Start again whatever happened: a replica must not be left stopped by a tuning.
	if err := s.StartReplica(ctx, channel); err != nil && cerr == nil {
		return err
	}
	return cerr
}

// Fence is a connection to a master held apart from the pool and logged in while the
// master is healthy, so that a statement can still be handed to the master once it stops
// answering: a frozen server (SIGSTOP, a stalled host) accepts the bytes into its socket
// buffer and runs the statement the moment it resumes, before any new connection could log
// in. A server that is really gone just fails it.
type Fence struct {
	s *Server
	c *sql.Conn
}

// OpenFence logs a fence connection in.
func (s *Server) OpenFence(ctx context.Context) (*Fence, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("fence on %s: %w", s.addr, err)
	}
	if err := c.PingContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("fence on %s: %w", s.addr, err)
	}
	return &Fence{s: s, c: c}, nil
}

// Alive checks the fence connection still works (the server may have closed it: restart,
// wait_timeout).
func (f *Fence) Alive(ctx context.Context) bool { return f.c.PingContext(ctx) == nil }

// Arm hands the server the fence statement (fenceSQL: every client connection ended, then
// read_only=ON, then the clients that connected meanwhile) and waits at most wait for the
// answer. It returns true when the server answered (it is read-only now), false when it did
// not in time: then the connection is dropped with the statement sent, and a server that
// was only frozen runs it when it resumes, at the same instant as the statements its
// clients sent while it was frozen. The fence is used up either way.
func (f *Fence) Arm(ctx context.Context, wait time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := f.c.ExecContext(ctx, fenceSQL)
	f.c.Close()
	if err == nil {
		return true, nil
	}
	if ctx.Err() != nil {
		return false, nil // sent, not answered: queued on a frozen server
	}
	return false, fmt.Errorf("fence on %s: %w", f.s.addr, err)
}

// fenceSQL ends the clients, sets read_only and ends late clients in one compound
// statement, so that a frozen server runs all of it the moment it resumes, without a round
// trip to the manager (Fence.Arm), and a returning one at once (Isolate). SET GLOBAL read_only=ON alone
// would wait there for the commits its clients had in flight (with semi-sync, for an
// acknowledgement no replica sends), reading OFF meanwhile; their connections are ended
// first, so it does not wait, and they get an error, never an OK. The connections spared
// are those Thread.killable spares: replication's, the server's daemons, its own.
//
// First, read_only is tried without waiting (lock_wait_timeout 0): with no write in flight
// it takes at once, which narrows the race with the statements clients queued during the
// freeze (every thread resumes together); with one in flight it fails at once (1205) and
// the kills make way.
var fenceSQL = "BEGIN NOT ATOMIC " + readOnlyNowSQL + endClientsSQL + " SET GLOBAL read_only = ON; " + endClientsSQL + " END"

// readOnlyNowSQL sets read_only if that needs no wait, and passes over the error when it
// would; the session's lock_wait_timeout is restored either way (Isolate runs on a pooled
// connection).
const readOnlyNowSQL = `BEGIN
  DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;
  SET SESSION lock_wait_timeout = 0;
  SET GLOBAL read_only = ON;
END;
SET SESSION lock_wait_timeout = DEFAULT; `

// endClientsSQL ends the client connections Thread.killable would, inside a compound
// statement. A connection that cannot be ended (gone meanwhile, or not ours to kill) is
// passed over, and a processlist that cannot be read ends only this block: neither may
// keep the statement that follows, read_only=ON, from running. An error of that statement
// still fails the whole.
const endClientsSQL = `BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE tid BIGINT UNSIGNED;
  DECLARE clients CURSOR FOR SELECT ID FROM information_schema.PROCESSLIST
    WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler')
      AND COMMAND NOT LIKE 'Binlog Dump%' AND COMMAND NOT IN ('Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker');
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN END;
  OPEN clients;
  ending: LOOP
    FETCH clients INTO tid;
    IF done THEN LEAVE ending; END IF;
    BEGIN
      DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN END;
      KILL CONNECTION tid;
    END;
  END LOOP;
  CLOSE clients;
END;`

// Close drops the fence without using it.
func (f *Fence) Close() error { return f.c.Close() }

// Isolate takes a returning former master out of service until it is rejoined or reseeded:
// every client connection is ended first (a write that waits for a semi-sync
// acknowledgement must never get one, and read_only would wait for it), then read_only is
// set, then the clients that connected meanwhile are ended too: the fence's statement
// (fenceSQL), run now. Replication threads and the server's daemons are left alone.
func (s *Server) Isolate(ctx context.Context) error {
	return s.exec(ctx, "isolate (end clients, read_only=ON)", fenceSQL)
}

// PrepareStopFromDeadSource bounds what stopping a semi-sync replica's IO thread costs when
// its source is frozen or cut off: the stopping thread logs in to the source to kill its
// own dump thread there, and with the default rpl_semi_sync_slave_kill_conn_timeout (5 s)
// STOP SLAVE then takes seconds (2 s measured on MariaDB 10.11); 1 s makes it immediate.
// A server without the variable (no semi-sync support) is left as it is.
func (s *Server) PrepareStopFromDeadSource(ctx context.Context) error {
	err := s.exec(ctx, "semi-sync kill timeout", "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = LEAST(@@GLOBAL.rpl_semi_sync_slave_kill_conn_timeout, 1)")
	if err != nil && errNumber(err) == 1193 { // unknown system variable
		return nil
	}
	return err
}

// Watch holds a connection to a server busy with short sleeps one after the other (DO
// SLEEP, below the driver's read timeout), so that the death of the server's process is
// known the moment the kernel resets the connection, without waiting for the next probe.
// It returns when a sleep fails: the server died or killed the session; nil only when ctx
// ended. A frozen server keeps the sleep waiting: its death is for the probes to find.
func (s *Server) Watch(ctx context.Context) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("watch on %s: %w", s.addr, err)
	}
	defer c.Close()
	for {
		_, err = c.ExecContext(ctx, "DO SLEEP(5) "+watchMark)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("watch on %s: %w", s.addr, err)
		}
	}
}

// watchMark tags the watch's statement, so that a switchover's freeze does not wait for it
// as for a client's write (Thread.IsClientWrite).
const watchMark = "/* replication-manager-pro watch */"
