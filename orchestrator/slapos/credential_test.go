package slapos

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"replication-manager-pro/ipv6"
)

// Issue 11 items 1 and 2: without a partition credential nobody may consume a one-shot
// request or download a bundle (both used to be served to anyone).
func TestAnonymousPartitionRoutesRefused(t *testing.T) {
	srv, f, _ := newServer(t)
	o := f.o
	db := o.Placement().Databases[0].Addr
	if err := o.StartDatabase(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/api/clusters/cluster1/servers/[2001:db8::10]/2099/"
	for _, action := range []string{"need-start", "need-stop", "need-config-change", "need-restart", "config"} {
		code, body := get(t, base+action)
		if code != http.StatusUnauthorized || !strings.Contains(body, "Authorization: Bearer") || !strings.Contains(body, "Partition credential required") {
			t.Errorf("anonymous %s: %d %q", action, code, body)
		}
	}
	for _, action := range []string{"need-rolling-restart", "need-rolling-reprov"} {
		if code, body := get(t, srv.URL+"/api/clusters/cluster1/"+action); code != http.StatusUnauthorized {
			t.Errorf("anonymous %s: %d %q", action, code, body)
		}
	}
	n, _ := o.Node(db)
	if !n.Has(CookieWaitStart) {
		t.Fatal("an anonymous request consumed the start meant for the partition")
	}
}

func TestPartitionKey(t *testing.T) {
	dir := t.TempDir()
	// Concurrent first uses agree on one key.
	keys := make(chan []byte, 8)
	for i := 0; i < 8; i++ {
		go func() {
			k, err := LoadOrCreatePartitionKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys <- k
		}()
	}
	first := <-keys
	for i := 1; i < 8; i++ {
		if k := <-keys; string(k) != string(first) || len(k) != 32 {
			t.Fatal("two keys for one working directory")
		}
	}
	fi, err := os.Stat(PartitionKeyPath(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(PartitionKeyPath(dir))); di.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %v", di.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(PartitionKeyPath(dir))); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	if err := os.WriteFile(PartitionKeyPath(dir), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreatePartitionKey(dir); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("a damaged key must be an error, not replaced: %v", err)
	}
	if _, err := LoadOrCreatePartitionKey(""); err == nil {
		t.Fatal("empty working directory")
	}
}

func TestPartitionCredential(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	hp := func(h string, p int) ipv6.HostPort { return ipv6.HostPort{Host: h, Port: p} }
	c := PartitionCredential(key, "cluster1", hp("2001:db8::10", 2099))
	if len(c) != 64 || !looksLikeCredential(c) {
		t.Fatalf("credential %q", c)
	}
	// One node, however it is spelled.
	for _, same := range []string{
		PartitionCredential(key, "CLUSTER1", hp("2001:DB8:0:0:0:0:0:10", 2099)),
		PartitionCredential(key, "cluster1", hp("[2001:db8::10]", 2099)),
	} {
		if same != c {
			t.Fatal("the credential depends on the spelling of the address or the cluster's case")
		}
	}
	if PartitionCredential(key, "c", hp("::ffff:10.0.0.1", 6032)) != PartitionCredential(key, "c", hp("10.0.0.1", 6032)) ||
		PartitionCredential(key, "c", hp("DB1", 3306)) != PartitionCredential(key, "c", hp("db1", 3306)) {
		t.Fatal("IPv4-mapped address or name case")
	}
	// Another node, port, cluster or key: another credential.
	others := map[string]bool{c: true}
	for _, o := range []string{
		PartitionCredential(key, "cluster1", hp("2001:db8::11", 2099)),
		PartitionCredential(key, "cluster1", hp("2001:db8::10", 2199)),
		PartitionCredential(key, "cluster2", hp("2001:db8::10", 2099)),
		PartitionCredential([]byte("another key, thirty-two bytes..."), "cluster1", hp("2001:db8::10", 2099)),
		JobPassword(key, "cluster1"),
	} {
		if others[o] {
			t.Fatal("two nodes share a credential")
		}
		others[o] = true
	}
	if !credentialMatches(strings.ToUpper(c), c) || credentialMatches(c[:63]+"0", c) && c[63] != '0' {
		t.Fatal("credentialMatches")
	}
	if looksLikeCredential("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl") {
		t.Fatal("a JWT taken for a credential")
	}
}
