package mariadb

import (
	"context"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

// BenchmarkProbe measures one Probe (two round trips over loopback) of a replica, the
// server kind with the most to decode.
func BenchmarkProbe(b *testing.B) {
	c := testenv.StartCluster(b, 2)
	s := open(b, c.Replicas()[0], false, Options{})
	ctx := context.Background()
	if _, err := s.Probe(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := s.Probe(pctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Replications) != 1 {
			b.Fatalf("replications: %d", len(st.Replications))
		}
	}
}

// BenchmarkProbeParallel runs probes from several goroutines against one server, as a
// monitor with a short ticker would when a probe overlaps the next.
func BenchmarkProbeParallel(b *testing.B) {
	c := testenv.StartCluster(b, 2)
	s := open(b, c.Replicas()[0], false, Options{MaxOpenConns: 4})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := s.Probe(ctx)
			cancel()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
