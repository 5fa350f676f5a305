package configurator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// DefaultSharedPct is prov-db-memory-shared-pct's default.
const DefaultSharedPct = "threads:16,innodb:60,myisam:10,aria:10,rocksdb:1,tokudb:1,s3:1,archive:1,querycache:0"

// Resources are the prov-db-* inputs of the sizing.
type Resources struct {
	MemoryMB       int     // prov-db-memory
	SharedPct      string  // prov-db-memory-shared-pct, name:percent list
	Cores          int     // prov-db-cpu-cores
	IOPS           int     // prov-db-disk-iops
	IOPSLatency    float64 // prov-db-disk-iops-latency, seconds
	MaxConnections int     // prov-db-max-connections
	ExpireLogDays  int     // prov-db-expire-log-days
}

// DefaultResources are the built-in defaults of the prov-db-* keys.
func DefaultResources() Resources {
	return Resources{MemoryMB: 256, SharedPct: DefaultSharedPct, Cores: 1, IOPS: 300, IOPSLatency: 0.002,
		MaxConnections: 1000, ExpireLogDays: 5}
}

// Sizing is what the fragments write. Sizes are in MB.
type Sizing struct {
	MemoryMB int
	// ThreadsMB is the per-thread share (pct "threads"); computed, written nowhere, as in
	// the original.
	ThreadsMB int

	BufferPoolMB int
	// BufferPoolInstances is computed as the original does but not written: MariaDB 10.6
	// removed innodb_buffer_pool_instances.
	BufferPoolInstances int
	LogFileMB           int
	LogBufferMB         int
	KeyBufferMB         int
	KeyCacheSegments    int
	AriaPagecacheMB     int
	QueryCacheMB        int
	RocksDBCacheMB      int
	S3PagecacheMB       int
	ArchiveMB           int // computed; the ARCHIVE engine has no buffer to size

	IOCapacity     int
	IOCapacityMax  int
	WriteIOThreads int
	ReadIOThreads  int
	PurgeThreads   int
	MaxDirtyPct    int
	MaxDirtyPctLwm int

	Cores           int
	ParallelThreads int
	MaxConnections  int
	ExpireLogsDays  int
}

// ParseSharedPct parses "name:percent,..." (prov-db-memory-shared-pct). Names are
// lower-cased; a percent must be an integer in 0..100, and the sum may not exceed 100.
func ParseSharedPct(s string) (map[string]int, error) {
	out := map[string]int{}
	sum := 0
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, v, ok := strings.Cut(e, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" {
			return nil, fmt.Errorf("prov-db-memory-shared-pct: entry %q: want name:percent", e)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 100 {
			return nil, fmt.Errorf("prov-db-memory-shared-pct: entry %q: percent must be an integer 0..100", e)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("prov-db-memory-shared-pct: %q given twice", name)
		}
		out[name] = n
		sum += n
	}
	if sum > 100 {
		return nil, fmt.Errorf("prov-db-memory-shared-pct: shares add up to %d%%, more than 100%%", sum)
	}
	return out, nil
}

// knownShares are the names the sizing reads; others are refused (a typo would silently
// leave a buffer at its default).
var knownShares = map[string]bool{"threads": true, "innodb": true, "myisam": true, "aria": true, "rocksdb": true,
	"tokudb": true, "s3": true, "archive": true, "querycache": true}

// Size computes the sizing from the resources; tags matter for smallredolog only. See
// docs/configurator.md for the formulas and the floors that keep mariadbd starting.
func Size(r Resources, tags TagSet) (Sizing, error) {
	if r.MemoryMB <= 0 {
		return Sizing{}, fmt.Errorf("prov-db-memory: %d MB, must be positive", r.MemoryMB)
	}
	if r.Cores <= 0 {
		return Sizing{}, fmt.Errorf("prov-db-cpu-cores: %d, must be positive", r.Cores)
	}
	if r.IOPS <= 0 {
		return Sizing{}, fmt.Errorf("prov-db-disk-iops: %d, must be positive", r.IOPS)
	}
	if r.IOPSLatency < 0 {
		return Sizing{}, fmt.Errorf("prov-db-disk-iops-latency: %g, must not be negative", r.IOPSLatency)
	}
	if r.MaxConnections < 10 || r.MaxConnections > 100000 {
		return Sizing{}, fmt.Errorf("prov-db-max-connections: %d, must be in 10..100000", r.MaxConnections)
	}
	if r.ExpireLogDays < 0 || r.ExpireLogDays > 99 {
		return Sizing{}, fmt.Errorf("prov-db-expire-log-days: %d, must be in 0..99", r.ExpireLogDays)
	}
	pct, err := ParseSharedPct(r.SharedPct)
	if err != nil {
		return Sizing{}, err
	}
	var names []string
	for n := range pct {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !knownShares[n] {
			return Sizing{}, fmt.Errorf("prov-db-memory-shared-pct: unknown share %q", n)
		}
	}
	m := r.MemoryMB
	share := func(name string) int { return m * pct[name] / 100 }

	s := Sizing{MemoryMB: m, ThreadsMB: share("threads"), Cores: r.Cores, MaxConnections: r.MaxConnections,
		ExpireLogsDays: r.ExpireLogDays}
	s.BufferPoolMB = atLeast(share("innodb"), 8)
	s.BufferPoolInstances = s.BufferPoolMB/8000 + 1
	s.LogFileMB = RedoLogMB(s.BufferPoolMB, tags.Has("smallredolog"))
	s.LogBufferMB = 16
	s.KeyBufferMB = atLeast(share("myisam"), 1)
	s.KeyCacheSegments = clamp(s.KeyBufferMB/8000+1, 1, 64)
	s.AriaPagecacheMB = atLeast(share("aria"), 1)
	s.QueryCacheMB = share("querycache")
	s.RocksDBCacheMB = atLeast(share("rocksdb"), 1)
	s.S3PagecacheMB = atLeast(share("s3"), 1)
	s.ArchiveMB = share("archive")

	s.IOCapacity = atLeast(r.IOPS/3, 100)
	s.IOCapacityMax = atLeast(r.IOPS, s.IOCapacity)
	s.WriteIOThreads = clamp(int(r.IOPSLatency*float64(r.IOPS)), 2, 64)
	s.ReadIOThreads = clamp(r.Cores, 1, 64)
	s.PurgeThreads = 4
	s.MaxDirtyPct = 40
	s.MaxDirtyPctLwm = 20
	s.ParallelThreads = clamp(r.Cores, 1, 16383)
	return s, nil
}

// RedoLogMB is innodb_log_file_size in MB: half the buffer pool within 1..20 GB as the
// original, but never more than the buffer pool itself (at least 128 MB), so that a small
// instance does not create a 1 GB redo log; 128 with tag smallredolog.
func RedoLogMB(bufferPoolMB int, small bool) int {
	if small {
		return 128
	}
	return min(clamp(bufferPoolMB/2, 1024, 20480), max(bufferPoolMB, 128))
}

func atLeast(v, floor int) int { return max(v, floor) }

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }
