package slapos

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// cluster1Request is a SlapOS request committed in this repository (testdata/ at its root,
// shared with cmd/replication-manager-pro's tests).
const cluster1Request = "../../testdata/slapos-request-cluster1.json"

// readCluster1Request reads cluster1Request; a missing fixture fails the test.
func readCluster1Request(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(cluster1Request)
	if err != nil {
		t.Fatalf("committed test fixture missing: %v", err)
	}
	return data
}

func TestParseRequestCluster1(t *testing.T) {
	data := readCluster1Request(t)
	req, warns, err := ParseRequest(data)
	if err != nil || len(warns) != 0 {
		t.Fatalf("%v %v", err, warns)
	}
	if len(req.Clusters) != 1 {
		t.Fatalf("%+v", req.Clusters)
	}
	c := req.Clusters[0]
	if c.Name != "cluster1" || c.DatabaseAmount != 4 || !c.UseIPv6 || c.FailoverMode != "manual" ||
		c.SwitchoverWaitKill != 5000 || c.ProxySQLUser != "external" || len(c.Tags) != 18 || c.ComputerGUIDs[3] != "COMP-XXX" {
		t.Fatalf("%+v", c)
	}
	// defaults from the schema
	// SlapOS's profile: 0 22 / 0 0 for the clusters of a given repman-cluster-dict.
	if c.DBMemory != 256 || c.LogicalBackupCron != "0 22 * * *" || c.PhysicalBackupCron != "0 0 * * *" || !req.Autorejoin || req.MailSMTPAddr != "localhost" {
		t.Fatalf("defaults not applied: %+v %+v", c, req)
	}
}

func TestParseRequestDefaults(t *testing.T) {
	req, _, err := ParseRequest([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Clusters) != 1 || req.Clusters[0].Name != "cluster1" || req.Clusters[0].DatabaseAmount != 2 {
		t.Fatalf("%+v", req.Clusters)
	}
	// Without repman-cluster-dict, SlapOS's default cluster1 backs up at 21:00 and 1:00.
	if c := req.Clusters[0]; c.LogicalBackupCron != "0 21 * * *" || c.PhysicalBackupCron != "0 1 * * *" || c.ProxySQLUser != "external" {
		t.Fatalf("default cluster: %+v", c)
	}
}

func TestParseRequestProblems(t *testing.T) {
	for _, tc := range []struct {
		json string
		want []string
	}{
		{`{"repman-cluster-dict": {"cluster1": {"database-amount": 1}}}`,
			[]string{"cluster1: database-amount: must be >= 2, got 1"}},
		{`{"repman-cluster-dict": {"cluster1": {"failover-mode": "sometimes"}}}`,
			[]string{`cluster1: failover-mode: must be one of "manual", "automatic", got "sometimes"`}},
		{`{"repman-cluster-dict": {"c1": {"database-amount": "3", "failover-mod": "manual", "db-memory": 300, "tags": ["ok", "bad tag"]}}}`,
			[]string{
				"c1: database-amount: must be integer, got string",
				"c1: db-memory: must be a multiple of 256, got 300",
				"c1: failover-mod: unknown parameter; did you mean \"failover-mode\"?",
				`c1: tags[1]: must match ^[A-Za-z0-9_.-]+$, got "bad tag"`,
			}},
		{`{"repman-cluster-dict": {"bad/name": {}}}`,
			[]string{`"bad/name": cluster name: must be letters, digits, '.', '_' or '-' (64 at most)`}},
		{`{"repman-cluster-dict": {}}`, []string{"repman-cluster-dict: must define at least 1"}},
		{`{"mail-smtp-port": 70000, "use-ipv6": "yes"}`, []string{"mail-smtp-port: must be <= 65535, got 70000"}},
	} {
		_, _, err := ParseRequest([]byte(tc.json))
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: error %v, want a RequestError", tc.json, err)
			continue
		}
		if strings.Join(re.Lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.json, re.Lines, tc.want)
		}
	}
	if _, _, err := ParseRequest([]byte(`{`)); err == nil {
		t.Error("broken JSON accepted")
	}
}
