package api

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// syncBuffer is a log sink safe for the API's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loginFrom posts a login from a client address and returns the answer.
func loginFrom(e *env, addr, user, password string) resp {
	e.t.Helper()
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)
	req := httptest.NewRequest("POST", "/api/login", strings.NewReader(body))
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	e.srv.APIHandler().ServeHTTP(rec, req)
	return resp{code: rec.Code, body: rec.Body.String(), hdr: rec.Header()}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestLoginGuardBoundedUnderHostileNames reproduces issue 11 item 4: 5,000 logins with
// 60 KB user names took the daemon from 32 to 524 MB (one guard entry per name, held) and
// wrote 300 MB of log (the name as typed). Now such a body is refused by its size, and
// names under the size limit cost a fixed-size guard entry and a truncated log field.
func TestLoginGuardBoundedUnderHostileNames(t *testing.T) {
	logs := &syncBuffer{}
	e := newDeadEnv(t, "", func(o *Options) {
		l := logrus.New()
		l.SetOutput(logs)
		o.Log = l
	})
	rng := rand.New(rand.NewPCG(1, 2))
	name := func(n int) string { // distinct names: a random head, a long tail
		b := bytes.Repeat([]byte{'n'}, n)
		for i := 0; i < 16; i++ {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		return string(b)
	}
	before := heapInUse()

	// 60 KB names: refused by the body limit, nothing kept, nothing logged.
	for i := 0; i < 5000; i++ {
		r := loginFrom(e, fmt.Sprintf("198.18.%d.%d:4000", i/250, i%250), name(60<<10), "x")
		if r.code != http.StatusRequestEntityTooLarge {
			t.Fatalf("60 KB name: %d %q", r.code, r.body)
		}
	}
	if n := e.srv.guard.size(); n != 0 {
		t.Fatalf("guard holds %d entries after refused bodies", n)
	}

	// 7 KB names (under the limit) from 5,000 addresses: each a failure, kept in fixed-size
	// tables; then 5,000 more from one address: 20 failures, then refusals logged once.
	for i := 0; i < 5000; i++ {
		if r := loginFrom(e, fmt.Sprintf("198.19.%d.%d:4000", i/250, i%250), name(7<<10), "x"); r.code != http.StatusForbidden {
			t.Fatalf("7 KB name %d: %d %q", i, r.code, r.body)
		}
	}
	refused := 0
	for i := 0; i < 5000; i++ {
		r := loginFrom(e, "198.18.200.1:4000", name(7<<10), "x")
		switch r.code {
		case http.StatusForbidden:
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("same address: %d %q", r.code, r.body)
		}
	}
	if refused != 5000-maxAddrFailures {
		t.Errorf("%d refusals from one address, want %d", refused, 5000-maxAddrFailures)
	}
	if n := e.srv.guard.size(); n > 3*guardCapacity {
		t.Errorf("guard holds %d entries, more than 3 × %d", n, guardCapacity)
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew by %d KB; guard entries %d; log %d bytes", grown>>10, e.srv.guard.size(), len(logs.String()))
	if grown > 16<<20 {
		t.Errorf("heap grew by %d MB over 15,000 hostile logins", grown>>20)
	}
	out := logs.String()
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		if len(sc.Text()) > 400 {
			t.Fatalf("log line of %d bytes: %.200s", len(sc.Text()), sc.Text())
		}
	}
	if lines > 5000+maxAddrFailures+5 || len(out) > 5100*400 {
		t.Errorf("log: %d lines, %d bytes", lines, len(out))
	}
	if !strings.Contains(out, "…(truncated, 7168 bytes)") || !strings.Contains(out, "logged once per limit") {
		t.Errorf("log lacks the truncation marker or the refusal line:\n%.2000s", out)
	}
}

// TestLoginLockoutIsPerClient reproduces the other half of issue 11 item 4: three wrong
// passwords from anyone locked the real admin out for 3 minutes, renewable forever. Now the
// lockout is per (address, user) plus per address, and a user under attack from many
// addresses stays open to addresses that did not fail.
func TestLoginLockoutIsPerClient(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newDeadEnv(t, "", func(o *Options) { o.Now = clk.now })
	const attacker, admin = "198.18.0.1:5000", "198.18.0.2:5000"
	for i := 0; i < 100; i++ {
		r := loginFrom(e, attacker, "admin", "guess")
		want := http.StatusForbidden
		if i >= maxPairFailures {
			want = http.StatusTooManyRequests
		}
		if r.code != want {
			t.Fatalf("attacker attempt %d: %d, want %d", i+1, r.code, want)
		}
		if r.code == http.StatusTooManyRequests && r.hdr.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if r := loginFrom(e, admin, "admin", apiPassword); r.code != 200 {
		t.Fatalf("admin from another address while attacked: %d %q", r.code, r.body)
	}
	// The attacker's address, whatever the user.
	if r := loginFrom(e, attacker, "admin", apiPassword); r.code != http.StatusTooManyRequests {
		t.Fatalf("attacker with the right password: %d", r.code)
	}

	// Distributed: 60 addresses fail once each: the user is under attack; those addresses
	// wait, a clean one (the real admin, or anyone) is still checked.
	for i := 0; i < 60; i++ {
		loginFrom(e, fmt.Sprintf("198.18.1.%d:5000", i), "admin", "guess")
	}
	if r := loginFrom(e, "198.18.1.7:5000", "admin", apiPassword); r.code != http.StatusTooManyRequests {
		t.Fatalf("an address that failed, user under attack: %d", r.code)
	}
	if r := loginFrom(e, "198.18.2.1:5000", "admin", apiPassword); r.code != 200 {
		t.Fatalf("a clean address while the user is under attack: %d %q", r.code, r.body)
	}

	// Per address: failures over many users.
	for i := 0; i < maxAddrFailures; i++ {
		loginFrom(e, "198.18.3.1:5000", fmt.Sprintf("user%d", i), "x")
	}
	if r := loginFrom(e, "198.18.3.1:5000", "ext", extPassword); r.code != http.StatusTooManyRequests {
		t.Fatalf("address over its limit: %d", r.code)
	}
	// An IPv6 /64 is one address.
	for i := 0; i < maxPairFailures; i++ {
		loginFrom(e, fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1), "ext", "x")
	}
	if r := loginFrom(e, "[2001:db8:1:2::ffff]:5000", "ext", extPassword); r.code != http.StatusTooManyRequests {
		t.Fatalf("another address of the same /64: %d", r.code)
	}
	if r := loginFrom(e, "[2001:db8:1:3::1]:5000", "ext", extPassword); r.code != 200 {
		t.Fatalf("another /64: %d", r.code)
	}

	clk.add(loginWindow + time.Second)
	if r := loginFrom(e, attacker, "admin", apiPassword); r.code != 200 {
		t.Fatalf("after the window: %d", r.code)
	}
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80":             "192.0.2.1",
		"[::ffff:192.0.2.1]:80":    "192.0.2.1",
		"[2001:db8::1]:80":         "2001:db8::/64",
		"[fe80::1%eth0]:80":        "fe80::/64",
		"[2001:db8:0:0:1::2]:8080": "2001:db8::/64",
		"not an address":           "not an address",
	} {
		if got := clientAddr(in); got != want {
			t.Errorf("clientAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
