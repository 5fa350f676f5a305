package slapos

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseRequest feeds `slapos render`'s request parsing arbitrary bytes. It must never
// panic; every problem line must be one printable line (no control character from the input
// reaches a terminal or a log); an accepted request names at least one cluster, and the
// same parameters serialised as SlapOS' request.serialised recipe sends them ({"_": text})
// parse to the same request. The seed corpus runs in every `go test`; `make fuzz` runs it
// longer.
func FuzzParseRequest(f *testing.F) {
	if b, err := os.ReadFile(cluster1Request); err == nil {
		f.Add(b)
		if s, err := json.Marshal(string(b)); err == nil {
			f.Add([]byte(`{"_": ` + string(s) + `}`))
		}
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"_": "{}"}`, `{"_": 1}`, `{"_": "{}", "a": 1}`, `{"_": "{\"_\": \"{}\"}"}`,
		`{"repman-cluster-dict": {"a": {}}, "repman-cluster-dict": {"b": {}}}`,
		`{"repman-cluster-dic": {"prod": {}}}`, `{"Repman_Cluster_Dict": {}}`, `{"whatever": [1, {"a": 1, "a": 2}]}`,
		"{\"mail-to\": \"a\xffb\"}", `{"mail-to": "\ud800"}`, `{"mail-to": "\ud83d\ude00"}`, `{"mail-to": "\udc00\ud800"}`,
		`{"repman-cluster-dict": {"c\n1": {}}}`, `{"repman-cluster-dict": {"c1": {"-sla-0-computer_guid": "x", "-sla-00-computer_guid": "y"}}}`,
		`{"repman-cluster-dict": {"c1": {"-sla-99999999999999999999-computer_guid": "x"}}}`,
		`{"repman-cluster-dict": {"c1": {"database-amount": 3, "failover-mod": "manual"}}, "slapos-legacy-anonymous-routes": true}`,
		`{"a": 1} {"b": 2}`, `{"a": [1, 2, {"b": [{}]}], "b": {"c": {"d": {}}}}`, "{\"\x00\": 1}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, warnings, err := ParseRequest(data)
		lines := warnings
		var re *RequestError
		if errors.As(err, &re) {
			lines = append(lines, re.Lines...)
		}
		for _, l := range lines {
			if l == "" {
				t.Fatalf("empty message line")
			}
			for _, r := range l {
				if unicode.IsControl(r) {
					t.Fatalf("control character %q in message %q", r, l)
				}
			}
		}
		if err != nil {
			if req != nil {
				t.Fatal("a request with an error")
			}
			return
		}
		if len(req.Clusters) == 0 {
			t.Fatal("accepted request without a cluster")
		}
		if strings.Contains(string(data), `"_"`) {
			return // already serialised (or holding a "_" key in a nested object)
		}
		s, merr := json.Marshal(string(data))
		if merr != nil {
			t.Fatal(merr)
		}
		again, _, err := ParseRequest([]byte(`{"_": ` + string(s) + `}`))
		if err != nil {
			t.Fatalf("the serialised form of an accepted request fails: %v", err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("the serialised form parses differently:\n%+v\n%+v", req, again)
		}
	})
}
