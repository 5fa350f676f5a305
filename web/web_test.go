package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesEmbeddedUI(t *testing.T) {
	h := Handler()
	for path, want := range map[string]string{
		"/":            "<title>replication-manager-pro</title>",
		"/app.js":      "/api/login",
		"/style.css":   "#topology",
		"/clusters/c1": "<title>replication-manager-pro</title>", // unknown paths get the page
		"/live.js":     "/stream",
		"/charts.js":   "function lineChart",
		"/panels.js":   "function confirmAction",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, body lacks %q", path, rec.Code, want)
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: no X-Frame-Options", path)
		}
	}
}
