package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/cluster"
	"replication-manager-pro/ipv6"
)

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readEvents reads server-sent events from a response body into a channel until it ends.
func readEvents(body interface{ Read([]byte) (int, error) }) <-chan sseEvent {
	ch := make(chan sseEvent, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[len("data: "):]
			}
		}
	}()
	return ch
}

// waitEvent returns the first event named name within d.
func waitEvent(t *testing.T, ch <-chan sseEvent, name string, d time.Duration) sseEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before a %q event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within %s", name, d)
		}
	}
}

func openStream(t *testing.T, base, token string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/clusters/c1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := httpsClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { res.Body.Close() })
	return res, readEvents(res.Body)
}

// TestStreamPushesStateAndSurvivesTheReadTimeout: the live stream sends the cluster's
// state first, then the new history samples and events as they come, past the
// listener's read timeout, with no secret; a bad token gets 401.
func TestStreamPushesStateAndSurvivesTheReadTimeout(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	ts := httptest.NewUnstartedServer(e.srv.APIHandler())
	ts.Config.ReadTimeout = 300 * time.Millisecond // the daemon's is 60 s
	ts.StartTLS()
	t.Cleanup(ts.Close) // after the stream's body is closed (cleanups run last first)

	req, _ := http.NewRequest("GET", ts.URL+"/api/clusters/c1/stream", nil)
	req.Header.Set("Authorization", "Bearer forged")
	if res, err := httpsClient().Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: %v %v", res, err)
	}

	_, ch := openStream(t, ts.URL, tok)
	hello := waitEvent(t, ch, "hello", 10*time.Second)
	if !strings.Contains(hello.data, `"cluster":"c1"`) {
		t.Errorf("hello %s", hello.data)
	}
	var servers []DBServer
	if err := json.Unmarshal([]byte(waitEvent(t, ch, "servers", 10*time.Second).data), &servers); err != nil || len(servers) != len(deadHosts) {
		t.Fatalf("servers: %v %+v", err, servers)
	}
	var tr TrendJSON
	if err := json.Unmarshal([]byte(waitEvent(t, ch, "trend", 10*time.Second).data), &tr); err != nil || len(tr.Servers) != len(deadHosts) || tr.Capacity != cluster.TrendCapacity {
		t.Fatalf("trend: %v %+v", err, tr)
	}
	// New samples keep coming (one a second at most) well past the read timeout.
	time.Sleep(time.Second)
	add := waitEvent(t, ch, "trend-add", 10*time.Second)
	if err := json.Unmarshal([]byte(add.data), &tr); err != nil || len(tr.Samples) == 0 {
		t.Fatalf("trend-add: %v %s", err, add.data)
	}
	// An event added to the log reaches the stream.
	m, _ := e.fleet.Get("c1")
	if err := m.Monitor.SetMaintenance(context.Background(), ipv6.HostPort{Host: "127.0.0.1", Port: 1}, true); err != nil {
		t.Fatal(err)
	}
	for {
		ev := waitEvent(t, ch, "events", 10*time.Second)
		if strings.Contains(ev.data, "maintenance on") {
			assertNoSecret(t, "stream events", resp{body: ev.data})
			break
		}
	}
}

// TestStreamBounds: beyond maxStreams open streams the route answers 503 with
// Retry-After; a shutdown ends open streams with a bye instead of waiting for them.
func TestStreamBounds(t *testing.T) {
	e := newDeadEnv(t, "", nil)
	tok := e.login("admin", apiPassword)
	e.srv.streams.mu.Lock()
	e.srv.streams.open = maxStreams
	e.srv.streams.mu.Unlock()
	e.start()
	req, _ := http.NewRequest("GET", e.apiURL("/api/clusters/c1/stream"), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := httpsClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("stream beyond the limit: %d", res.StatusCode)
	}
	e.srv.streams.mu.Lock()
	e.srv.streams.open = 0
	e.srv.streams.mu.Unlock()

	_, ch := openStream(t, "https://"+e.srv.APIAddr().String(), tok)
	waitEvent(t, ch, "hello", 10*time.Second)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown waited %s for the stream", d)
	}
	if bye := waitEvent(t, ch, "bye", 5*time.Second); !strings.Contains(bye.data, "shutdown") {
		t.Errorf("bye %s", bye.data)
	}
}
