package slaposim

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
	"time"
)

// The simulated network: a bridge in this (the root) namespace holding the root
// partition's addresses, and one network namespace per computer, attached by a veth pair,
// holding its partitions' addresses. Its own prefixes, apart from internal/testenv's
// (fd00:5eed::/64, 198.18.0.0/15 on its bridge), so both can exist at once.
const (
	SimIPv6Prefix = "fd00:5eed:51::"
	SimIPv4Prefix = "198.19.51."
	RootIPv6      = SimIPv6Prefix + "fe"
	RootIPv4      = SimIPv4Prefix + "254"
	netCmdTimeout = 20 * time.Second
	netLockWait   = 5 * time.Minute
	namePrefix    = "rmpsim-"  // namespaces
	bridgePrefix  = "rmpsimbr" // bridges
)

// network is the simulator's bridge and computers. One exists at a time on a machine (a
// file lock): they share addresses.
type network struct {
	suffix    string
	bridge    string
	computers []*Computer
	unlock    func()
	nextV4    int
}

// Computer is a simulated SlapOS computer: a network namespace with eth0 on the bridge.
type Computer struct {
	GUID string
	K    int    // 1-based
	NS   string // namespace ("" in loopback mode: the computer is this machine)
	veth string // root-namespace end of its veth pair
	nets *network
	part int // partitions allocated so far
}

func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), netCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newNetwork() (*network, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("network namespaces need iproute2's ip: %w", err)
	}
	unlock, err := lockFile(filepath.Join(os.TempDir(), "rmpsim-netns.lock"))
	if err != nil {
		return nil, err
	}
	removeStale()
	var rnd [2]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		unlock()
		return nil, err
	}
	n := &network{suffix: hex.EncodeToString(rnd[:]), unlock: unlock}
	n.bridge = bridgePrefix + n.suffix
	for _, a := range [][]string{
		{"link", "add", n.bridge, "type", "bridge", "mcast_snooping", "0"},
		{"addr", "add", RootIPv4 + "/24", "dev", n.bridge},
		{"-6", "addr", "add", RootIPv6 + "/64", "dev", n.bridge, "nodad"},
		{"link", "set", n.bridge, "up"},
	} {
		if err := ipCmd(a...); err != nil {
			n.close()
			return nil, err
		}
	}
	return n, nil
}

// computer creates a computer (namespace and veth).
func (n *network) computer(guid string) (*Computer, error) {
	k := len(n.computers) + 1
	c := &Computer{GUID: guid, K: k, NS: fmt.Sprintf("%s%s-%d", namePrefix, n.suffix, k),
		veth: fmt.Sprintf("rs%sh%d", n.suffix, k), nets: n}
	peer := fmt.Sprintf("rs%sn%d", n.suffix, k)
	if err := ipCmd("netns", "add", c.NS); err != nil {
		return nil, err
	}
	n.computers = append(n.computers, c)
	for _, a := range [][]string{
		{"link", "add", c.veth, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", c.NS},
		{"link", "set", c.veth, "master", n.bridge},
		{"link", "set", c.veth, "up"},
		{"-n", c.NS, "link", "set", peer, "name", "eth0"},
		{"-n", c.NS, "link", "set", "lo", "up"},
		{"-n", c.NS, "link", "set", "eth0", "up"},
	} {
		if err := ipCmd(a...); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// partitionAddrs gives a computer's next partition its IPv6 (fd00:5eed:51::<k>:<p>) and
// IPv4 on eth0.
func (c *Computer) partitionAddrs() (v6, v4 string, err error) {
	c.part++
	v6 = fmt.Sprintf("%s%x:%x", SimIPv6Prefix, c.K, c.part)
	c.nets.nextV4++
	if c.nets.nextV4 > 250 {
		return "", "", fmt.Errorf("more than 250 simulated partitions")
	}
	v4 = SimIPv4Prefix + strconv.Itoa(c.nets.nextV4)
	if err := ipCmd("-n", c.NS, "-6", "addr", "add", v6+"/64", "dev", "eth0", "nodad"); err != nil {
		return "", "", err
	}
	if err := ipCmd("-n", c.NS, "addr", "add", v4+"/24", "dev", "eth0"); err != nil {
		return "", "", err
	}
	return v6, v4, nil
}

// LinkDown pulls the computer's cable (its veth goes down on the bridge side); LinkUp puts
// it back.
func (c *Computer) LinkDown() error {
	if c.NS == "" {
		return fmt.Errorf("computer %s: loopback mode has no link to cut", c.GUID)
	}
	return ipCmd("link", "set", c.veth, "down")
}

// LinkUp puts the computer's link back.
func (c *Computer) LinkUp() error {
	if c.NS == "" {
		return fmt.Errorf("computer %s: loopback mode has no link", c.GUID)
	}
	return ipCmd("link", "set", c.veth, "up")
}

// wrap makes cmd run inside the computer's namespace (ip netns exec execs the command:
// the process is cmd's own).
func (c *Computer) wrap(cmd *exec.Cmd) *exec.Cmd {
	if c == nil || c.NS == "" {
		return cmd
	}
	w := exec.Command("ip", append([]string{"netns", "exec", c.NS, cmd.Path}, cmd.Args[1:]...)...)
	w.Env, w.Dir = cmd.Env, cmd.Dir
	return w
}

func (n *network) close() {
	for _, c := range n.computers {
		_ = ipCmd("netns", "del", c.NS)
		_ = ipCmd("link", "del", c.veth) // gone with the namespace; to be sure
	}
	_ = ipCmd("link", "del", n.bridge)
	n.computers = nil
	if n.unlock != nil {
		n.unlock()
		n.unlock = nil
	}
}

// removeStale deletes namespaces and bridges a killed simulator left (called under the
// lock: no live simulator owns them).
func removeStale() {
	ctx, cancel := context.WithTimeout(context.Background(), netCmdTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], namePrefix) {
				_ = ipCmd("netns", "del", f[0])
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "-o", "link", "show", "type", "bridge").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				name := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
				if strings.HasPrefix(name, bridgePrefix) {
					_ = ipCmd("link", "del", name)
				}
			}
		}
	}
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	deadline := time.Now().Add(netLockWait)
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			break
		} else if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("network lock %s: still held after %s (another simulator runs): %w", path, netLockWait, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
