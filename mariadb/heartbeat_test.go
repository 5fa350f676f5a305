package mariadb

import (
	"context"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/ipv6"
)

// The heartbeat written on a master replicates: the replica reads the same token; it is
// refused on a read_only server and with a token that could break the statement.
func TestHeartbeatReplicates(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	open := func(s *testenv.Server) *Server {
		srv, err := Open(ipv6.HostPort{Host: s.Host(), Port: s.Port()}, testenv.RootUser, testenv.RootPassword, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	m, r := open(c.Master()), open(c.Replicas()[0])
	ctx := context.Background()
	if tok, err := r.ReadHeartbeat(ctx); err != nil || tok != "" {
		t.Fatalf("before any heartbeat: %q %v", tok, err)
	}
	for _, tok := range []string{"first-0001", "second-0002"} {
		if err := m.WriteHeartbeat(ctx, tok); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := r.ReadHeartbeat(ctx)
			if err == nil && got == tok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica shows %q (%v), want %q", got, err, tok)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := r.WriteHeartbeat(ctx, "on-replica"); err == nil || !strings.Contains(err.Error(), "read_only") {
		t.Fatalf("heartbeat on a read_only replica: %v", err)
	}
	if err := m.WriteHeartbeat(ctx, "x' FROM dual; DROP DATABASE mysql; --"); err == nil {
		t.Fatal("a token with a quote was written")
	}
}
