package slapos

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/config"
)

// snapshotDir returns every regular file under dir (relative path -> content).
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func renderJSON(t *testing.T, out, js string) (*RenderResult, error) {
	t.Helper()
	req, _, err := ParseRequest([]byte(js))
	if err != nil {
		return nil, err
	}
	return Render(req, RenderOptions{OutDir: out})
}

// Issue 11 item 5: a render whose result does not load leaves the previous good render as it
// was (it used to leave the new files in place) and no temporary directory behind.
func TestRenderFailedReloadKeepsOldFiles(t *testing.T) {
	out := t.TempDir()
	if _, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {}}}`); err != nil {
		t.Fatal(err)
	}
	// An operator's own file defines [prod]: fine alone, but a render adding cluster prod
	// defines the table twice, which config.Load refuses.
	op := "[prod]\ntitle = \"operator's\"\ndb-servers-hosts = \"127.0.0.1:3306\"\n"
	if err := os.WriteFile(filepath.Join(out, "cluster.d", "operator.toml"), []byte(op), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(filepath.Join(out, "config.toml"), config.Options{}); err != nil {
		t.Fatalf("the good render with the operator's file must load: %v", err)
	}
	before := snapshotDir(t, out)
	_, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {"database-amount": 3}, "prod": {}}}`)
	if err == nil || !strings.Contains(err.Error(), "does not load") || !strings.Contains(err.Error(), "[prod]") {
		t.Fatalf("want a load error naming [prod], got %v", err)
	}
	after := snapshotDir(t, out)
	if !reflect.DeepEqual(before, after) {
		var diff []string
		for k, v := range after {
			if before[k] != v {
				diff = append(diff, k)
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				diff = append(diff, "-"+k)
			}
		}
		sort.Strings(diff)
		t.Fatalf("a failed render changed files: %v", diff)
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".render") {
			t.Fatalf("temporary directory left: %s", e.Name())
		}
	}
	if _, err := config.Load(filepath.Join(out, "config.toml"), config.Options{}); err != nil {
		t.Fatalf("the old render no longer loads: %v", err)
	}
}

// Issue 11 item 5: a mistyped top-level key is an error with a suggestion; it used to render
// the default cluster1 and remove the existing cluster's file.
func TestRenderMistypedTopLevelKey(t *testing.T) {
	out := t.TempDir()
	if _, err := renderJSON(t, out, `{"repman-cluster-dict": {"prod": {}}}`); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, out)
	_, err := renderJSON(t, out, `{"repman-cluster-dic": {"prod": {"database-amount": 3}}}`)
	if err == nil || !strings.Contains(err.Error(), `repman-cluster-dic: unknown parameter; did you mean "repman-cluster-dict"?`) {
		t.Fatalf("want a did-you-mean error, got %v", err)
	}
	if !reflect.DeepEqual(before, snapshotDir(t, out)) {
		t.Fatal("a refused request changed the files")
	}
	if _, err := os.Stat(filepath.Join(out, "cluster.d", "config-prod.toml")); err != nil {
		t.Fatalf("prod's file: %v", err)
	}
	for _, tc := range []struct{ js, want string }{
		{`{"Repman-Cluster-Dict": {"prod": {}}}`, `did you mean "repman-cluster-dict"?`},
		{`{"repman_cluster_dict": {"prod": {}}}`, `did you mean "repman-cluster-dict"?`},
		{`{"tags-list": ["pkg"]}`, `tags-list: unknown parameter; did you mean "tag-list"?`},
		{`{"repman-cluster-dict": {"prod": {"failover-mod": "manual"}}}`, `prod: failover-mod: unknown parameter; did you mean "failover-mode"?`},
	} {
		if _, _, err := ParseRequest([]byte(tc.js)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.js, tc.want, err)
		}
	}
}

// Issue 11 item 5: an unknown top-level key that looks like nothing known is a warning, but a
// request without repman-cluster-dict never removes an existing cluster's file: rendering the
// default cluster over an existing render is refused.
func TestRenderDefaultClusterNeverRemovesExisting(t *testing.T) {
	out := t.TempDir()
	if _, err := renderJSON(t, out, `{"repman-cluster-dict": {"prod": {}}}`); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, out)
	req, warns, err := ParseRequest([]byte(`{"something-else": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "something-else: unknown parameter, ignored") {
		t.Fatalf("warnings %q", warns)
	}
	_, err = Render(req, RenderOptions{OutDir: out})
	if err == nil || !strings.Contains(err.Error(), "repman-cluster-dict") || !strings.Contains(err.Error(), "config-prod.toml") {
		t.Fatalf("want a refusal naming repman-cluster-dict and config-prod.toml, got %v", err)
	}
	if !reflect.DeepEqual(before, snapshotDir(t, out)) {
		t.Fatal("a refused render changed the files")
	}
	// Explicitly asking for other clusters still removes prod's file.
	res, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {}}}`)
	if err != nil || len(res.Removed) != 1 || res.Removed[0] != filepath.Join("cluster.d", "config-prod.toml") {
		t.Fatalf("explicit change: %+v %v", res, err)
	}
}

// Issue 11 item 5: parameters serialised by SlapOS' request.serialised recipe (one "_" key
// holding the JSON text) are decoded; they used to be ignored (default cluster1).
func TestParseRequestSerialised(t *testing.T) {
	plain := `{"repman-cluster-dict": {"prod": {"database-amount": 3, "-sla-0-computer_guid": "COMP-1"}}, "autoseed": false}`
	want, _, err := ParseRequest([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	ser := `{"_": ` + jsonString(plain) + `}`
	got, warns, err := ParseRequest([]byte(ser))
	if err != nil || len(warns) != 0 {
		t.Fatalf("serialised: %v %v", err, warns)
	}
	if !reflect.DeepEqual(want, got) || got.Clusters[0].Name != "prod" || got.Autoseed {
		t.Fatalf("serialised request differs:\n%+v\n%+v", want, got)
	}
	for _, tc := range []struct{ js, want string }{
		{`{"_": 3}`, `_: must be a string holding the JSON parameters`},
		{`{"_": "not json"}`, `_ (serialised parameters): not a JSON document`},
		{`{"_": "{}", "autoseed": true}`, `_: serialised parameters come alone, found also "autoseed"`},
		{`{"_": "{\"repman-cluster-dict\": {\"a\": {}}, \"repman-cluster-dict\": {}}"}`, `_ (serialised parameters): duplicate key "repman-cluster-dict"`},
		{`{"_": "{\"_\": \"{}\"}"}`, `_ (serialised parameters): _: unknown parameter`},
	} {
		if _, _, err := ParseRequest([]byte(tc.js)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.js, tc.want, err)
		}
	}
}

func jsonString(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// Issue 11 item 5: duplicate keys and invalid UTF-8 are refused with the key or the position
// (they used to pass, the last duplicate silently winning).
func TestParseRequestStrictJSON(t *testing.T) {
	for _, tc := range []struct{ js, want string }{
		{`{"repman-cluster-dict": {"a": {}}, "repman-cluster-dict": {"b": {}}}`, `duplicate key "repman-cluster-dict" at line 1, column`},
		{"{\"repman-cluster-dict\": {\"a\": {},\n \"a\": {}}}", `repman-cluster-dict: duplicate key "a" at line 2, column`},
		{`{"repman-cluster-dict": {"a": {"database-amount": 2, "database-amount": 3}}}`, `repman-cluster-dict: a: duplicate key "database-amount"`},
		{`{"tag-list": ["a"], "mail-to": "x", "mail-to": "y"}`, `duplicate key "mail-to"`},
		{`{"a\"b": 1, "a\"b": 2}`, `duplicate key "a\"b" at line 1, column 13 (byte offset 12)`},
		{"{\"mail-to\": \"a\xffb\"}", "invalid UTF-8 at line 1, column 15 (byte offset 14)"},
		{"{\"repman-cluster-dict\": {\"c\xc3\": {}}}", "invalid UTF-8 at line 1, column 28 (byte offset 27)"},
		{`{"mail-to": "\ud800"}`, `invalid UTF-16 escape \ud800 (a lone surrogate) at line 1, column 14 (byte offset 13)`},
		{`{"mail-to": "x"} {}`, `after the JSON object`},
		{`[1]`, `must be a JSON object`},
		{``, `empty`},
	} {
		_, _, err := ParseRequest([]byte(tc.js))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want %q, got %v", tc.js, tc.want, err)
		}
		var re *RequestError
		if err != nil && !errors.As(err, &re) {
			t.Errorf("%q: error is not a *RequestError: %T", tc.js, err)
		}
	}
	// A valid surrogate pair and plain non-ASCII text pass.
	if _, _, err := ParseRequest([]byte(`{"mail-to": "\ud83d\ude00 é"}`)); err != nil {
		t.Fatalf("valid escapes: %v", err)
	}
}

// A failure in the middle of moving the new files in (after the validation) puts every old
// file back: the files already replaced and the stale file already moved away.
func TestRenderSwapFailureRestores(t *testing.T) {
	out := t.TempDir()
	if _, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {}, "old": {}}}`); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, out)
	for failAt := 1; failAt <= 7; failAt++ {
		calls := 0
		renameFile = func(from, to string) error {
			calls++
			if calls == failAt {
				return errors.New("disk on fire")
			}
			return os.Rename(from, to)
		}
		_, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {"database-amount": 3}, "new": {}}}`)
		renameFile = os.Rename
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("failure at rename %d: %v", failAt, err)
		}
		if after := snapshotDir(t, out); !reflect.DeepEqual(before, after) {
			t.Fatalf("failure at rename %d left a mix of old and new files", failAt)
		}
	}
	res, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {"database-amount": 3}, "new": {}}}`)
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// A temporary directory left by a killed render is removed by a later one once it is old.
func TestRenderRemovesOldTemporaryDirectories(t *testing.T) {
	out := t.TempDir()
	old, fresh := filepath.Join(out, ".render-123"), filepath.Join(out, ".render-456")
	for _, d := range []string{old, fresh} {
		if err := os.MkdirAll(filepath.Join(d, "cluster.d"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := renderJSON(t, out, `{"repman-cluster-dict": {"cluster1": {}}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old temporary directory kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a recent one (maybe a running render's) removed: %v", err)
	}
}
