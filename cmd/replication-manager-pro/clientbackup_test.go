package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"replication-manager-pro/internal/testenv"
)

// The backup commands end to end: a logical backup of a replica queued with "client
// backup", followed with "client jobs", listed by "client backups", then "client reseed"
// of the other replica from it: it replicates again with the master's data.
func TestClientBackupJobsReseed(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	c.Master().Exec(t, "CREATE DATABASE shop")
	c.Master().Exec(t, "CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB")
	c.Master().Exec(t, "INSERT INTO shop.t VALUES (1), (2), (3)")
	c.WaitSync(t)
	hosts := []string{c.Servers[0].Addr(), c.Servers[1].Addr(), c.Servers[2].Addr()}
	port, _ := startDaemon(t, hosts)
	client := clientRunner(t, port)
	waitJob := func(server, kind string) string {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, errs, code := client("jobs", "--server", server)
			if code != 0 {
				t.Fatalf("client jobs: exit %d %s", code, errs)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, kind) && strings.Contains(line, "done") {
					return line
				}
				if strings.Contains(line, kind) && strings.Contains(line, "failed") {
					t.Fatalf("job failed: %s", line)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s job done on %s:\n%s", kind, server, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	out, errs, code := client("backup", "--server", hosts[1], "--kind", "logical")
	if code != 0 || !strings.Contains(out, "queued") {
		t.Fatalf("client backup: exit %d %q %q", code, out, errs)
	}
	t.Log(waitJob(hosts[1], "backup-logical"))
	out, errs, code = client("backups")
	if code != 0 || !strings.Contains(out, hosts[1]) || !strings.Contains(out, "logical") {
		t.Fatalf("client backups: exit %d\n%s%s", code, out, errs)
	}

	// A stray table on the other replica is gone after its reseed.
	c.Servers[2].Exec(t, "SET STATEMENT sql_log_bin=0 FOR CREATE TABLE shop.stray (x INT)")
	out, errs, code = client("reseed", "--server", hosts[2], "--kind", "logical")
	if code != 0 {
		t.Fatalf("client reseed: exit %d %q %q", code, out, errs)
	}
	t.Log(waitJob(hosts[2], "reseed-logical"))
	c.Master().Exec(t, "INSERT INTO shop.t VALUES (4)")
	c.WaitSync(t)
	if got := c.Servers[2].QueryString(t, "SELECT COUNT(*) FROM shop.t"); got != "4" {
		t.Fatalf("reseeded replica holds %s rows, want 4", got)
	}
	if got := c.Servers[2].QueryString(t, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='shop' AND TABLE_NAME='stray'"); got != "0" {
		t.Fatal("the stray table survived the reseed")
	}
	if _, _, code := client("backup", "--server", hosts[1], "--kind", "incremental"); code == 0 {
		t.Fatal("an unknown kind was accepted")
	}

	// Stop and start are jobs too. On premise a stop is a SHUTDOWN: done; nothing can
	// start a server there: the failed job says so.
	code, body := apiPost(t, port, "/api/clusters/c1/servers/"+url.PathEscape(hosts[1])+"/actions/stop")
	if code != http.StatusOK {
		t.Fatalf("stop on premise: HTTP %d %s", code, body)
	}
	code, body = apiPost(t, port, "/api/clusters/c1/servers/"+url.PathEscape(hosts[1])+"/actions/start")
	if code != http.StatusInternalServerError || !strings.Contains(body, "not supported") {
		t.Fatalf("start on premise: HTTP %d %s", code, body)
	}
	// The server is stopped and nothing can start it here: a restart fails, as a job.
	code, body = apiPost(t, port, "/api/clusters/c1/servers/"+url.PathEscape(hosts[1])+"/actions/restart")
	if code != http.StatusInternalServerError {
		t.Fatalf("restart on premise: HTTP %d %s", code, body)
	}
	out, errs, code = client("jobs", "--server", hosts[1])
	if code != 0 || !regexp.MustCompile(`stop +done`).MatchString(out) || !regexp.MustCompile(`start +failed`).MatchString(out) ||
		!regexp.MustCompile(`restart +failed`).MatchString(out) {
		t.Fatalf("stop and start are not jobs: exit %d\n%s%s", code, out, errs)
	}

	// The newer original's routes: reseed/{method}, job-cancel/{task}, reseed-cancel.
	srv2 := "/api/clusters/c1/servers/" + url.PathEscape(hosts[2]) + "/actions/"
	if code, body := apiPost(t, port, srv2+"reseed/logicalmaster"); code != http.StatusBadRequest || !strings.Contains(body, "logicalbackup") {
		t.Fatalf("unsupported reseed method: HTTP %d %s", code, body)
	}
	if code, body := apiPost(t, port, srv2+"job-cancel/defragment"); code != http.StatusBadRequest || !strings.Contains(body, "defragment") {
		t.Fatalf("unknown task: HTTP %d %s", code, body)
	}
	if code, body := apiPost(t, port, srv2+"reseed-cancel"); code != http.StatusNotFound || !strings.Contains(body, "no reseed") {
		t.Fatalf("reseed-cancel with nothing running: HTTP %d %s", code, body)
	}
	code, body = apiPost(t, port, srv2+"reseed/logicalbackup")
	var queued struct{ ID int64 }
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &queued) != nil || queued.ID == 0 {
		t.Fatalf("reseed/logicalbackup: HTTP %d %s", code, body)
	}
	// Canceled at once it is either still queued or running (200, then failed "canceled"),
	// or already done (404): never both.
	code, body = apiPost(t, port, srv2+"job-cancel/reseedmysqldump")
	out, _, _ = client("jobs", "--server", hosts[2])
	switch code {
	case http.StatusOK:
		if !strings.Contains(body, strconv.FormatInt(queued.ID, 10)) {
			t.Fatalf("job-cancel canceled %s, want job %d", body, queued.ID)
		}
		for deadline := time.Now().Add(30 * time.Second); !regexp.MustCompile(`(?m)^` + strconv.FormatInt(queued.ID, 10) + `\s.*failed`).MatchString(out); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("canceled job %d not failed:\n%s", queued.ID, out)
			}
			out, _, _ = client("jobs", "--server", hosts[2])
		}
	case http.StatusNotFound:
		t.Logf("the reseed was done before its cancel: %s", body)
	default:
		t.Fatalf("job-cancel: HTTP %d %s", code, body)
	}
}

// apiPost logs in as admin and POSTs to a route of the daemon's API.
func apiPost(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	res, err := hc.Post(base+"/api/login", "application/json", strings.NewReader(`{"username":"admin","password":"`+cliAPIPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
