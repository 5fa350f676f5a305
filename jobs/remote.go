package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
)

// Remote runs jobs through the original's protocol, for servers whose files the manager
// cannot reach (SlapOS partitions, on-premise hosts): a row in the server's
// replication_manager_schema.jobs table, picked up by the partition's dbjobs script, and a
// TCP stream between the partition and one of the manager's receiver ports
// (scheduler-db-servers-receiver-ports), or the partition's own port for a reseed.
type Remote struct {
	// Advertise is the host written in the job rows: where partitions connect
	// (monitoring-address).
	Advertise string
	// Bind is the address receivers listen on ("" = all).
	Bind string
	// Ports are the receiver ports; each stream takes a free one.
	Ports []int
	// SenderPort returns the port a partition listens on for a reseed (its socat port).
	SenderPort func(server ipv6.HostPort) int
	// Open returns a SQL handle to a server (the jobs table).
	Open func(server ipv6.HostPort) (*mariadb.Server, error)
	// Poll is how often the job row is read; PickupTimeout bounds the wait for the
	// partition to pick a job up (dbjobs runs every minute), StreamTimeout a stream.
	Poll, PickupTimeout, StreamTimeout time.Duration

	mu    sync.Mutex
	inUse map[int]bool
}

func (r *Remote) defaults() (poll, pickup, stream time.Duration) {
	poll, pickup, stream = r.Poll, r.PickupTimeout, r.StreamTimeout
	if poll <= 0 {
		poll = time.Second
	}
	if pickup <= 0 {
		pickup = 3 * time.Minute
	}
	if stream <= 0 {
		stream = time.Hour
	}
	return
}

// listen takes a free receiver port.
func (r *Remote) listen() (net.Listener, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inUse == nil {
		r.inUse = map[int]bool{}
	}
	var errs []error
	for _, p := range r.Ports {
		if r.inUse[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ipv6.Unbracket(r.Bind), strconv.Itoa(p)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.inUse[p] = true
		return l, p, nil
	}
	return nil, 0, fmt.Errorf("no free receiver port among %v (scheduler-db-servers-receiver-ports): %v", r.Ports, errors.Join(errs...))
}

func (r *Remote) release(p int) {
	r.mu.Lock()
	delete(r.inUse, p)
	r.mu.Unlock()
}

// Receive queues task on server with a receiver port, takes the one stream the partition
// sends to it into sink, and waits for the partition to mark the job ended. It returns the
// job's result text.
func (r *Remote) Receive(ctx context.Context, server ipv6.HostPort, task string, sink io.Writer) (string, error) {
	poll, pickup, stream := r.defaults()
	l, port, err := r.listen()
	if err != nil {
		return "", err
	}
	defer r.release(port)
	defer l.Close()
	db, err := r.Open(server)
	if err != nil {
		return "", err
	}
	defer db.Close()
	id, err := db.InsertJob(ctx, task, port, r.Advertise)
	if err != nil {
		return "", err
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() { c, err := l.Accept(); ch <- accepted{c, err} }()
	var conn net.Conn
	select {
	case a := <-ch:
		if a.err != nil {
			return "", fmt.Errorf("receiver port %d: %w", port, a.err)
		}
		conn = a.c
	case <-time.After(pickup):
		db.CancelJob(context.Background(), id, "no stream received")
		return "", fmt.Errorf("%s on %s: no stream on receiver port %d within %s (is the partition's dbjobs script running?)", task, server, port, pickup)
	case <-ctx.Done():
		db.CancelJob(context.Background(), id, "canceled")
		return "", ctx.Err()
	}
	l.Close()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(stream))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	_, cerr := io.Copy(sink, conn)
	stop()
	if cerr != nil {
		return "", fmt.Errorf("%s from %s: stream: %w", task, server, cerr)
	}
	return r.waitEnd(ctx, db, id, poll, pickup)
}

// waitEnd waits for the partition to set the job's end.
func (r *Remote) waitEnd(ctx context.Context, db *mariadb.Server, id int64, poll, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		row, err := db.Job(ctx, id)
		if err == nil && row.End != nil {
			return strings.TrimSpace(row.Result), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("job %d on %s: not marked ended within %s", id, db.Addr(), limit)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Send queues task on server (a reseed), waits for the partition to pick it up and listen
// on its port, streams src to it, and waits for the partition to mark the job ended.
func (r *Remote) Send(ctx context.Context, server ipv6.HostPort, task string, src io.Reader) (string, error) {
	poll, pickup, stream := r.defaults()
	port := 4444
	if r.SenderPort != nil {
		port = r.SenderPort(server)
	}
	db, err := r.Open(server)
	if err != nil {
		return "", err
	}
	defer db.Close()
	id, err := db.InsertJob(ctx, task, port, r.Advertise)
	if err != nil {
		return "", err
	}
	// The partition marks the row done when it takes the job, then listens.
	deadline := time.Now().Add(pickup)
	for {
		row, err := db.Job(ctx, id)
		if err == nil && row.Done {
			break
		}
		if time.Now().After(deadline) {
			db.CancelJob(context.Background(), id, "not picked up")
			return "", fmt.Errorf("%s on %s: not picked up within %s (is the partition's dbjobs script running?)", task, server, pickup)
		}
		select {
		case <-ctx.Done():
			db.CancelJob(context.Background(), id, "canceled")
			return "", ctx.Err()
		case <-time.After(poll):
		}
	}
	addr := net.JoinHostPort(ipv6.Unbracket(server.Host), strconv.Itoa(port))
	var conn net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("%s on %s: the partition does not listen on %s: %w", task, server, addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	conn.SetDeadline(time.Now().Add(stream))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	_, cerr := io.Copy(conn, src)
	stop()
	conn.Close()
	if cerr != nil {
		return "", fmt.Errorf("%s to %s: stream: %w", task, server, cerr)
	}
	return r.waitEnd(ctx, db, id, poll, stream)
}
