package backup

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
	"replication-manager-pro/internal/testenv"
	"replication-manager-pro/internal/writeload"
)

// benchRows is the size of the benchmarks' data set: RMP_BENCH_ROWS rows in each of 4
// sysbench tables (about 240 bytes a row on disk); 1,000,000 makes about 1 GB.
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("RMP_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// BenchmarkPhysicalBackupVsRaw compares a stored, checked physical backup (TakePhysical:
// mariadb-backup's stream hashed, checked chunk by chunk and written to the store) with a
// raw `mariadb-backup --stream=xbstream > /dev/null` of the same data.
func BenchmarkPhysicalBackupVsRaw(b *testing.B) {
	bin := realtest.LookPath(b, "mariadb-backup", "mariadb-backup")
	c := testenv.StartCluster(b, 1, testenv.WithArgs("--innodb-buffer-pool-size=128M"))
	s := c.Servers[0]
	writeload.Prepare(b, s, 4, benchRows())
	data := filepath.Join(s.Dir(), "data")
	b.Logf("datadir %d MB", dirSize(data)>>20)
	st, _ := OpenStore(b.TempDir(), "bench")
	ctx := context.Background()
	var raw, ours time.Duration
	for i := 0; i < b.N; i++ {
		scratch := b.TempDir()
		cnf, remove, _ := optionFile(scratch, rootCreds, "client", "mariabackup")
		cmd := exec.Command(bin, "--defaults-file="+cnf, "--backup", "--stream=xbstream", "--target-dir="+scratch, "--datadir="+data,
			"--host=127.0.0.1", "--port="+strconv.Itoa(s.Port()), "--protocol=TCP")
		cmd.Stdout = io.Discard
		errb := newTail(4096)
		cmd.Stderr = errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v %s", err, errb.String())
		}
		raw += time.Since(start)
		remove()
		start = time.Now()
		m, err := TakePhysical(ctx, st, PhysicalOptions{Server: addrOf(s), DataDir: data, Creds: rootCreds})
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		b.SetBytes(m.Size)
		st.Remove(m.ID)
	}
	b.ReportMetric(raw.Seconds()/float64(b.N), "raw-s/op")
	b.ReportMetric(ours.Seconds()/float64(b.N), "stored-s/op")
	b.ReportMetric(ours.Seconds()/raw.Seconds(), "stored/raw")
}

// BenchmarkReseedPhysical times the data side of a reseed of a replica from a stored
// physical backup: check, extract and prepare next to the datadir, stop, swap, start.
func BenchmarkReseedPhysical(b *testing.B) {
	realtest.LookPath(b, "mariadb-backup", "mariadb-backup")
	c := testenv.StartCluster(b, 2, testenv.WithArgs("--innodb-buffer-pool-size=128M"))
	m, r := c.Servers[0], c.Servers[1]
	writeload.Prepare(b, m, 4, benchRows())
	c.WaitSync(b)
	st, _ := OpenStore(b.TempDir(), "bench")
	ctx := context.Background()
	bk, err := TakePhysical(ctx, st, PhysicalOptions{Server: addrOf(m), DataDir: filepath.Join(m.Dir(), "data"), Creds: rootCreds})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("backup %d MB", bk.Size>>20)
	seeder := &Seeder{Store: st, Creds: rootCreds, Node: func(ipv6HostPort) Node { return testNode{r} }, TmpDir: b.TempDir()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := seeder.Restore(ctx, addrOf(r), Source{Backup: bk.ID, Kind: Physical}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(bk.Size)
}
