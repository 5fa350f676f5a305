package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The replica settings a flashback keeps are the master*.info files, not the relay log
// positions (the relay logs start afresh) nor anything else of the old datadir.
func TestReplicationInfoKeepsReplicaSettingsOnly(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"master.info", "master-east.info", "multi-master.info", "relay-log.info",
		"relay-log-east.info", "ibdata1", "master-notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o660); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "master-dir.info"), 0o750)
	got := replicationInfo(dir)
	want := []string{"master-east.info", "master.info", "multi-master.info"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
}

// A dump's position is read from mariadb-dump's line, commented out (--master-data=2) or not,
// and nothing else that looks like it passes into the SET statement.
func TestDumpPosition(t *testing.T) {
	for in, want := range map[string]string{
		"-- MariaDB dump\n--\n-- SET GLOBAL gtid_slave_pos='0-1-5';\n":  "0-1-5",
		"SET GLOBAL gtid_slave_pos='0-1-5,1-2-7';\n":                    "0-1-5,1-2-7",
		"-- SET GLOBAL gtid_slave_pos='0-1-5'; DROP DATABASE x; --':\n": "0-1-5",
		"SET GLOBAL gtid_slave_pos='0-1-5\\'; DROP DATABASE x; -- ';\n": "",
		"-- no position here\n":                                         "",
	} {
		got := ""
		if m := dumpPos.FindStringSubmatch(in); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%q: position %q, want %q", in, got, want)
		}
	}
}
