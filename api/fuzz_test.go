package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"replication-manager-pro/ipv6"
)

// FuzzActionInput feeds the strict decoding of every action route (query string and body,
// as a form, JSON or multipart) with arbitrary input: it never panics, it accepts only known
// parameters given once with a value of their kind, and a refusal is a 400, 413 or 415 whose
// message stays short whatever the input. The seed corpus runs in every `go test`; `make
// fuzz` runs it longer.
func FuzzActionInput(f *testing.F) {
	var routes []route
	for _, rt := range (&Server{}).routes() {
		if rt.action {
			routes = append(routes, rt)
		}
	}
	if len(routes) < 15 {
		f.Fatalf("only %d action routes", len(routes))
	}
	seeds := []struct {
		query, ctype, body string
	}{
		{"", formType, "prefmaster=127.0.0.1:17512%"},
		{"", formType, "prefmaster=[2001:db8::1]:3306&dryRun=true"},
		{"dryRun=1", "", ""},
		{"n=200", "", ""},
		{"force=maybe", formType, "force=true"},
		{"", "application/json", `{"prefmaster":"127.0.0.1:3306","dryRun":false}`},
		{"", "application/json", `{"dryRun":true,"dryRun":true}`},
		{"", "application/json", `{"a":{"b":[1,2]}}`},
		{"", "", `{"n": 12}`},
		{"", "", "n=1;n=2"},
		{"a%zz=1", "", ""},
		{"", "multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"dryRun\"\r\n\r\ntrue\r\n--X--\r\n"},
		{"", "multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nx\r\n--X--\r\n"},
		{"", "text/plain; charset=\xff", "x"},
		{"", formType, "\xff=\xfe"},
	}
	for i, s := range seeds {
		f.Add(uint8(i), s.query, s.ctype, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, which uint8, query, ctype string, body []byte) {
		rt := routes[int(which)%len(routes)]
		req := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
		req.URL.RawQuery = query
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		v, e := readInput(httptest.NewRecorder(), req, rt.params)
		if e != nil {
			switch e.code {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("%s: code %d", rt.pattern, e.code)
			}
			if msg := e.Error(); len(msg) > 400 || !utf8.ValidString(strconv.Quote(msg)) {
				t.Fatalf("%s: %d-byte message %q", rt.pattern, len(msg), msg)
			}
			return
		}
		for name, val := range v {
			p, ok := lookupParam(rt.params, name)
			if !ok || p.name != name {
				t.Fatalf("%s: accepted unknown field %q", rt.pattern, name)
			}
			switch p.kind {
			case boolParam:
				if _, ok := parseBoolWord(val); !ok {
					t.Fatalf("%s: %s=%q accepted as a boolean", rt.pattern, name, val)
				}
			case hostPortParam:
				if _, err := ipv6.ParseHostPort(val, ipv6.DefaultPort); err != nil {
					t.Fatalf("%s: %s=%q accepted as host:port", rt.pattern, name, val)
				}
			case countParam:
				if n := v.count(name, -1); n < 1 || n > maxCount {
					t.Fatalf("%s: %s=%q accepted as a count", rt.pattern, name, val)
				}
			}
		}
		// What a lenient parser would have read must not differ from what we accepted:
		// a field we accepted from a form is the one url.ParseQuery reads.
		if mt := strings.TrimSpace(strings.Split(ctype, ";")[0]); mt == formType && len(v) > 0 {
			if q, err := url.ParseQuery(string(body)); err == nil {
				for name, val := range v {
					for k, vs := range q {
						if strings.EqualFold(k, name) && len(vs) == 1 && strings.TrimSpace(vs[0]) != val && name != "n" {
							t.Fatalf("%s: %s read as %q, url.ParseQuery says %q", rt.pattern, name, val, vs[0])
						}
					}
				}
			}
		}
	})
}
