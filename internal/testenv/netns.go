package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"replication-manager-pro/internal/realtest"
)

// Addresses of the test network. Hosts are numbered k = 1..N; the bridge (this, the root
// namespace) holds BridgeIPv4/BridgeIPv6.
const (
	NetIPv6Prefix = "fd00:5eed::"
	NetIPv4Prefix = "198.18.0."
	BridgeIPv6    = "fd00:5eed::fe"
	BridgeIPv4    = "198.18.0.254"
	maxHosts      = 200
	netLockWait   = 3 * time.Minute
	netCmdTimeout = 20 * time.Second
)

// Network is a bridge in the root namespace with N hosts (network namespaces) attached by
// veth pairs. Only one Network exists at a time on a machine (all use fd00:5eed::/64):
// NewNetwork takes a machine-wide file lock, held until the test ends.
type Network struct {
	Bridge string
	Hosts  []*Host
	t      testing.TB
	suffix string
}

// Host is a network namespace with eth0 on the bridge, lo up, IPv4 198.18.0.<k>/15 and
// IPv6 fd00:5eed::<k>/64.
type Host struct {
	K    int    // 1-based host number
	NS   string // namespace name (ip netns)
	IPv4 string
	IPv6 string
	veth string // root-namespace end of the veth pair
	t    testing.TB
	cut  bool
}

// RequireRoot skips the test unless it runs as root (a failure under CI or
// RMP_REQUIRE_REAL=1: realtest.Missing).
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	realtest.Root(t, why)
}

// NewNetwork creates the bridge and n hosts. Everything is removed when the test ends.
func NewNetwork(t testing.TB, n int) *Network {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping network-namespace test in -short mode")
	}
	RequireRoot(t, "network namespaces, veth pairs and a bridge")
	if n < 1 || n > maxHosts {
		t.Fatalf("testenv: NewNetwork: 1..%d hosts, got %d", maxHosts, n)
	}
	realtest.LookPath(t, "ip", "iproute2")
	realtest.LookPath(t, "nft", "nftables")
	unlock, err := lockNetwork()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(unlock)
	removeStaleNetworks()

	var rnd [2]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	nw := &Network{t: t, suffix: hex.EncodeToString(rnd[:])}
	nw.Bridge = "rmpbr" + nw.suffix
	t.Cleanup(nw.destroy)

	nw.ip("link", "add", nw.Bridge, "type", "bridge", "mcast_snooping", "0")
	nw.ip("addr", "add", BridgeIPv4+"/15", "dev", nw.Bridge)
	nw.ip("-6", "addr", "add", BridgeIPv6+"/64", "dev", nw.Bridge, "nodad")
	nw.ip("link", "set", nw.Bridge, "up")
	for k := 1; k <= n; k++ {
		h := &Host{
			K:    k,
			NS:   fmt.Sprintf("rmp-%s-%d", nw.suffix, k),
			IPv4: NetIPv4Prefix + strconv.Itoa(k),
			IPv6: NetIPv6Prefix + strconv.FormatInt(int64(k), 16),
			veth: fmt.Sprintf("rmp%sh%d", nw.suffix, k),
			t:    t,
		}
		peer := fmt.Sprintf("rmp%sn%d", nw.suffix, k)
		nw.ip("netns", "add", h.NS)
		nw.Hosts = append(nw.Hosts, h)
		nw.ip("link", "add", h.veth, "type", "veth", "peer", "name", peer)
		nw.ip("link", "set", peer, "netns", h.NS)
		nw.ip("link", "set", h.veth, "master", nw.Bridge)
		nw.ip("link", "set", h.veth, "up")
		nw.ip("-n", h.NS, "link", "set", peer, "name", "eth0")
		nw.ip("-n", h.NS, "link", "set", "lo", "up")
		nw.ip("-n", h.NS, "addr", "add", h.IPv4+"/15", "dev", "eth0")
		nw.ip("-n", h.NS, "-6", "addr", "add", h.IPv6+"/64", "dev", "eth0", "nodad")
		nw.ip("-n", h.NS, "link", "set", "eth0", "up")
	}
	return nw
}

func (nw *Network) ip(args ...string) {
	nw.t.Helper()
	if _, err := run(netCmdTimeout, "ip", args...); err != nil {
		nw.t.Fatalf("testenv: network: %v", err)
	}
}

func (nw *Network) destroy() {
	for _, h := range nw.Hosts {
		if _, err := run(netCmdTimeout, "ip", "netns", "del", h.NS); err != nil {
			nw.t.Logf("testenv: network cleanup: %v", err)
		}
		// Deleting the namespace deletes eth0 and thus its peer; be sure anyway.
		_, _ = run(netCmdTimeout, "ip", "link", "del", h.veth)
	}
	if _, err := run(netCmdTimeout, "ip", "link", "del", nw.Bridge); err != nil {
		nw.t.Logf("testenv: network cleanup: %v", err)
	}
}

// lockNetwork takes the machine-wide lock that serialises Networks (they share addresses).
func lockNetwork() (func(), error) {
	path := filepath.Join(os.TempDir(), "rmp-netns.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	deadline := time.Now().Add(netLockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("network lock %s: still held after %v: %w", path, netLockWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// removeStaleNetworks deletes namespaces and bridges left by a test process that died
// without cleaning up. Called with the lock held, so no live Network owns them.
func removeStaleNetworks() {
	if out, err := run(netCmdTimeout, "ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], "rmp-") {
				_, _ = run(netCmdTimeout, "ip", "netns", "del", f[0])
			}
		}
	}
	if out, err := run(netCmdTimeout, "ip", "-o", "link", "show", "type", "bridge"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 1 {
				name := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
				if strings.HasPrefix(name, "rmpbr") {
					_, _ = run(netCmdTimeout, "ip", "link", "del", name)
				}
			}
		}
	}
}

// Command returns an exec.Cmd running name inside the host's namespace; the caller owns it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Exec runs a short command inside the host (30 s limit) and returns its combined output.
func (h *Host) Exec(args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("host %s: exec: no command", h.NS)
	}
	out, err := run(30*time.Second, "ip", append([]string{"netns", "exec", h.NS}, args...)...)
	if err != nil {
		return out, fmt.Errorf("host %s: %w", h.NS, err)
	}
	return out, nil
}

// cutRules blackholes the host: every packet in or out of eth0 is silently dropped, except
// neighbour discovery, so peers see timeouts (a partition), not "host unreachable".
const cutRules = `table inet rmpcut {
	chain in {
		type filter hook input priority -300; policy accept;
		iifname "eth0" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		iifname "eth0" drop
	}
	chain out {
		type filter hook output priority -300; policy accept;
		oifname "eth0" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		oifname "eth0" drop
	}
}
`

// Cut partitions the host from the network: packets are dropped silently (nft rules in its
// namespace), so connections to it time out. Loopback inside the host keeps working.
func (h *Host) Cut() {
	h.t.Helper()
	if h.cut {
		return
	}
	f, err := os.CreateTemp("", "rmp-cut-*.nft")
	if err != nil {
		h.t.Fatalf("testenv: cut %s: %v", h.NS, err)
	}
	defer os.Remove(f.Name())
	_, werr := f.WriteString(cutRules)
	if cerr := f.Close(); werr != nil || cerr != nil {
		h.t.Fatalf("testenv: cut %s: write rules: %v %v", h.NS, werr, cerr)
	}
	if _, err := h.Exec("nft", "-f", f.Name()); err != nil {
		h.t.Fatalf("testenv: cut: %v", err)
	}
	h.cut = true
}

// Restore undoes Cut.
func (h *Host) Restore() {
	h.t.Helper()
	if !h.cut {
		return
	}
	if _, err := h.Exec("nft", "delete", "table", "inet", "rmpcut"); err != nil {
		h.t.Fatalf("testenv: restore: %v", err)
	}
	h.cut = false
}

// LinkDown takes the host's veth down on the bridge side (a pulled cable); LinkUp restores.
func (h *Host) LinkDown() {
	h.t.Helper()
	if _, err := run(netCmdTimeout, "ip", "link", "set", h.veth, "down"); err != nil {
		h.t.Fatalf("testenv: link down %s: %v", h.NS, err)
	}
}

// LinkUp brings the host's veth back up.
func (h *Host) LinkUp() {
	h.t.Helper()
	if _, err := run(netCmdTimeout, "ip", "link", "set", h.veth, "up"); err != nil {
		h.t.Fatalf("testenv: link up %s: %v", h.NS, err)
	}
}
