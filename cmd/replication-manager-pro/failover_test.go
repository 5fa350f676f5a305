package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

func TestSwitchoverAndFailoverCommands(t *testing.T) {
	c := testenv.StartCluster(t, 3, testenv.ReplicateOverIPv6())
	var hosts []string
	for _, s := range c.Servers {
		hosts = append(hosts, s.Addr6())
	}
	cfg := writeClusterConfig(t, hosts)

	// Dry run: the plan is printed, nothing moves.
	out, errs, code := runCmd(t, "switchover", "--config", cfg, "--prefered", hosts[2], "--dry-run")
	if code != 0 || !strings.Contains(out, "switchover of cluster c1: master "+hosts[0]+" -> "+hosts[2]) || !strings.Contains(out, "freeze-old-master") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	if got := c.Master().QueryString(t, "SELECT @@read_only"); got != "0" {
		t.Fatal("dry run froze the master")
	}

	out, errs, code = runCmd(t, "switchover", "--config", cfg, "--prefered", "[::1]:1")
	if code != 1 || !strings.Contains(errs, "not in db-servers-hosts") {
		t.Fatalf("unknown target: exit %d %s", code, errs)
	}

	out, errs, code = runCmd(t, "switchover", "--config", cfg, "--prefered", hosts[2])
	if code != 0 || !strings.Contains(out, "new master writable after") {
		t.Fatalf("switchover: exit %d\n%s\n%s", code, out, errs)
	}
	if got := c.Servers[2].QueryString(t, "SELECT @@read_only"); got != "0" {
		t.Fatal("new master read-only")
	}
	// START SLAVE returns before the IO thread has connected: poll.
	newPort := strings.TrimPrefix(hosts[2][strings.LastIndex(hosts[2], ":"):], ":")
	for deadline := time.Now().Add(10 * time.Second); ; {
		st := c.Servers[0].SlaveStatus(t)
		if st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes" && st["Master_Port"] == newPort {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old master not replicating from the new one: port %s IO %s SQL %s", st["Master_Port"], st["Slave_IO_Running"], st["Slave_SQL_Running"])
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A live master is not failed over.
	_, errs, code = runCmd(t, "failover", "--config", cfg)
	if code != 1 || !strings.Contains(errs, "use switchover") {
		t.Fatalf("failover of a live master: exit %d %s", code, errs)
	}
	c.Servers[2].Kill()
	// Until the replicas notice the lost connection (milliseconds), they vouch for the master
	// and the failover is refused: retry briefly, as an operator would.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _, code = runCmd(t, "failover", "--config", cfg, "--dry-run", "--json")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var doc struct {
		Plan struct {
			NewMaster string
			Election  struct{ Candidates []struct{ Server string } }
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.Plan.NewMaster == "" || len(doc.Plan.Election.Candidates) != 2 {
		t.Fatalf("failover --dry-run --json: exit %d\n%s", code, out)
	}
	out, errs, code = runCmd(t, "failover", "--config", cfg)
	if code != 0 || !strings.Contains(out, "promote") {
		t.Fatalf("failover: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("failover output:\n%s", out)
	out, _, code = runCmd(t, "discover", "--config", cfg)
	if !strings.Contains(out, "master "+doc.Plan.NewMaster) || code == 0 { // the killed server is unreachable
		t.Fatalf("after failover:\n%s", out)
	}
}
