package testenv

import "testing"

// BenchmarkStartCluster3 measures starting a 3-node GTID cluster (until the replicas'
// threads run) and tearing it down; the template datadir is built before the timer starts.
func BenchmarkStartCluster3(b *testing.B) {
	RequireMariaDB(b)
	if _, err := templateDataDir(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		StartCluster(b, 3).Close()
	}
}
