package probefarm_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"replication-manager-pro/cluster"
	"replication-manager-pro/internal/probefarm"
	"replication-manager-pro/ipv6"
	"replication-manager-pro/mariadb"
	"replication-manager-pro/topology"
)

// The monitoring benchmark runs the farm in a child process (this test binary re-executed
// with RMP_PROBEFARM_CHILD=1) so that getrusage(RUSAGE_SELF) of the benchmark process counts
// the monitor's CPU only, not the endpoints answering it.
const (
	childEnv        = "RMP_PROBEFARM_CHILD"
	childNEnv       = "RMP_PROBEFARM_N"
	childClusterEnv = "RMP_PROBEFARM_CLUSTER_SIZE"
	portsPrefix     = "PROBEFARM PORTS "
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild serves a farm until its standard input closes (the parent ended or closed it),
// after printing the ports on one line.
func runChild() int {
	n, _ := strconv.Atoi(os.Getenv(childNEnv))
	size, _ := strconv.Atoi(os.Getenv(childClusterEnv))
	f, err := probefarm.Start(n, probefarm.Options{User: farmUser, Password: farmPassword, ClusterSize: size})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ports := make([]string, 0, n)
	for _, a := range f.Addrs() {
		ports = append(ports, strconv.Itoa(a.Port))
	}
	fmt.Println(portsPrefix + strings.Join(ports, ","))
	io.Copy(io.Discard, os.Stdin)
	f.Close()
	if u := f.Unknown(); len(u) > 0 {
		fmt.Fprintf(os.Stderr, "probefarm child: unknown statements: %q\n", u)
		return 2
	}
	return 0
}

// childFarm is a farm served by a child process.
type childFarm struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs []ipv6.HostPort
	done  chan error
}

func startChildFarm(b *testing.B, n, clusterSize int) *childFarm {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", childNEnv+"="+strconv.Itoa(n), childClusterEnv+"="+strconv.Itoa(clusterSize))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &childFarm{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), portsPrefix) {
				lines <- sc.Text()
				break
			}
		}
		io.Copy(io.Discard, stdout)
		c.done <- cmd.Wait()
	}()
	b.Cleanup(c.stop)
	select {
	case line := <-lines:
		for _, p := range strings.Split(strings.TrimPrefix(line, portsPrefix), ",") {
			port, err := strconv.Atoi(p)
			if err != nil {
				b.Fatalf("probefarm child: port %q", p)
			}
			c.addrs = append(c.addrs, ipv6.HostPort{Host: probefarm.DefaultHost, Port: port})
		}
	case err := <-c.done:
		b.Fatalf("probefarm child ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		b.Fatal("probefarm child: no ports within 30s")
	}
	return c
}

func (c *childFarm) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// cpuSeconds returns the user+system CPU of this process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procCPUSeconds reads utime+stime of another process from /proc/<pid>/stat.
func procCPUSeconds(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// statusKB reads a field of /proc/self/status in kB (VmHWM: peak RSS; VmRSS: current).
func statusKB(field string) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v
		}
	}
	return 0
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := len(sorted) * p / 100
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkMonitor1000Servers measures the monitor's own cost for 1000 servers (10 clusters
// of 100: one master and 99 replicas each) served by a farm in a child process: 3 warm-up
// rounds, then 10 rounds on a 1 s ticker (the 10 monitors tick together, the worst case),
// then 10 rounds back to back. Its run time is fixed (about 15 s) whatever b.N.
//
// Metrics: cpu-s/tick/1000srv (user+sys CPU of this process per round at the 1 s ticker),
// core-frac@1s (that CPU over the wall time), cpu-s/tick-b2b (per round back to back),
// maxRSS-MB (VmHWM of this process), probe-p50-ms / probe-p99-ms (per-probe latency seen by
// the monitor), tick-p50-ms / tick-max-ms (wall time of a round), farm-core-frac (the
// child's CPU, for information), probe-errors (should be 0).
func BenchmarkMonitor1000Servers(b *testing.B) {
	const (
		clusters    = 10
		perCluster  = 100
		servers     = clusters * perCluster
		warmup      = 3
		tickerTicks = 10
		b2bTicks    = 10
		ticker      = time.Second
	)
	farm := startChildFarm(b, servers, perCluster)
	log := logrus.New()
	log.SetOutput(io.Discard)
	dial := cluster.MariaDBDialer(farmUser, farmPassword, mariadb.Options{ConnectTimeout: 2 * time.Second})
	var monitors []*cluster.Monitor
	for c := 0; c < clusters; c++ {
		m := cluster.NewMonitor(cluster.MonitorConfig{
			Cluster: fmt.Sprintf("farm%02d", c), Hosts: farm.addrs[c*perCluster : (c+1)*perCluster],
			Ticker: ticker, ProbeTimeout: time.Second, MaxFail: 3, MaxLag: 30, CheckLag: true, ReadOnlyReplicas: true,
		}, dial, nil, log)
		monitors = append(monitors, m)
		b.Cleanup(m.Close)
	}
	ctx := context.Background()
	var (
		latMu   sync.Mutex
		lat     []time.Duration
		errs    int
		rounds  []time.Duration
		collect bool
	)
	round := func() {
		start := time.Now()
		var wg sync.WaitGroup
		for _, m := range monitors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				snap := m.Tick(ctx)
				if !collect {
					return
				}
				latMu.Lock()
				defer latMu.Unlock()
				for _, s := range snap.Servers {
					if !s.Reachable {
						errs++
						continue
					}
					lat = append(lat, s.ProbeLatency)
				}
			}()
		}
		wg.Wait()
		if collect {
			rounds = append(rounds, time.Since(start))
		}
	}

	for i := 0; i < warmup; i++ {
		round()
	}
	for _, m := range monitors {
		snap := m.Snapshot()
		want := topology.StateMaster
		for i, s := range snap.Servers {
			if i > 0 {
				want = topology.StateSlave
			}
			if s.State != want {
				b.Fatalf("%s %s: state %s, want %s (%s)", snap.Cluster, s.Addr, s.State, want, s.ProbeError)
			}
		}
	}

	b.ResetTimer()
	collect = true
	farmCPU0 := procCPUSeconds(farm.cmd.Process.Pid)
	cpu0, wall0 := cpuSeconds(), time.Now()
	t := time.NewTicker(ticker)
	for i := 0; i < tickerTicks; i++ {
		round()
		if i < tickerTicks-1 {
			<-t.C
		}
	}
	t.Stop()
	// One full ticker period per round: the last round's idle remainder counts too.
	time.Sleep(time.Until(wall0.Add(tickerTicks * ticker)))
	cpuTicker, wallTicker := cpuSeconds()-cpu0, time.Since(wall0)
	farmCPU := procCPUSeconds(farm.cmd.Process.Pid) - farmCPU0

	cpu1 := cpuSeconds()
	for i := 0; i < b2bTicks; i++ {
		round()
	}
	cpuB2B := cpuSeconds() - cpu1
	b.StopTimer()

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(rounds, func(i, j int) bool { return rounds[i] < rounds[j] })
	perTick := cpuTicker / tickerTicks * 1000 / servers
	b.ReportMetric(perTick, "cpu-s/tick/1000srv")
	b.ReportMetric(cpuTicker/wallTicker.Seconds(), "core-frac@1s")
	b.ReportMetric(cpuB2B/b2bTicks*1000/servers, "cpu-s/tick-b2b")
	b.ReportMetric(statusKB("VmHWM")/1024, "maxRSS-MB")
	b.ReportMetric(ms(percentile(lat, 50)), "probe-p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "probe-p99-ms")
	b.ReportMetric(ms(percentile(rounds, 50)), "tick-p50-ms")
	b.ReportMetric(ms(rounds[len(rounds)-1]), "tick-max-ms")
	b.ReportMetric(farmCPU/wallTicker.Seconds(), "farm-core-frac")
	b.ReportMetric(float64(errs), "probe-errors")
}
