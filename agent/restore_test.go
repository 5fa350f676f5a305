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

// Only the newest failed restore is kept beside the data directory, also in a directory
// whose name has brackets; the data directory and other files are left alone.
func TestPruneFailedKeepsTheNewest(t *testing.T) {
	base := filepath.Join(t.TempDir(), "[::1]_3306")
	dd := filepath.Join(base, "mysql")
	for _, d := range []string{dd, dd + ".failed-20261201T000000", dd + ".failed-20261202T000000", dd + ".old-x", filepath.Join(base, "other.failed-1")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	pruneFailed(dd, dd+".failed-20261202T000000")
	entries, _ := os.ReadDir(base)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"mysql", "mysql.failed-20261202T000000", "mysql.old-x", "other.failed-1"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("left %v, want %v", names, want)
	}
}
