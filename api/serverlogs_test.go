package api

import (
	"context"
	"testing"
)

// A server's own log file is read only when its address is this machine's.
func TestIsLocalHost(t *testing.T) {
	ctx := context.Background()
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "192.0.2.1": false, "2001:db8::1": false} {
		if got := isLocalHost(ctx, host); got != want {
			t.Errorf("isLocalHost(%q) = %v, want %v", host, got, want)
		}
	}
}
