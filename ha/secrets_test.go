package ha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"replication-manager-pro/internal/testenv"
)

// keySet is a one-file set made like the managers' keys: 32 random bytes, hex.
func keySet(dir string) SecretFiles {
	p := filepath.Join(dir, "sub", "the.key")
	return SecretFiles{Name: "test.key", Paths: map[string]string{"key": p}, Create: func() error {
		b := make([]byte, 32)
		rand.Read(b)
		os.MkdirAll(filepath.Dir(p), 0o700)
		return os.WriteFile(p, []byte(hex.EncodeToString(b)+"\n"), 0o600)
	}}
}

func readOr(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShareFiles: managers starting at once end with one copy; a later one takes it; one
// with its own different copy is refused and keeps it; a set nobody has is not invented
// without Create.
func TestShareFiles(t *testing.T) {
	e := testenv.StartEtcd(t, 1)
	ctx := context.Background()
	var cs []*Coordinator
	for _, n := range []string{"m0", "m1", "m2", "m3"} {
		c := start(t, e, n)
		t.Cleanup(c.Close)
		cs = append(cs, c)
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = cs[i].ShareFiles(ctx, keySet(dirs[i])) }()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	p := func(i int) string { return keySet(dirs[i]).Paths["key"] }
	first := readOr(t, p(0))
	if readOr(t, p(1)) != first || len(first) != 65 {
		t.Fatalf("two managers started together hold different keys: %q %q", first, readOr(t, p(1)))
	}
	if fi, _ := os.Stat(p(1)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("taken key mode %v", fi.Mode().Perm())
	}
	// A later manager with nothing takes it (its Create must not run).
	set := keySet(dirs[2])
	set.Create = func() error { t.Error("Create ran although a copy is shared"); return nil }
	if err := cs[2].ShareFiles(ctx, set); err != nil || readOr(t, p(2)) != first {
		t.Fatalf("later manager: %v %q", err, readOr(t, p(2)))
	}
	// One that has its own is refused, its file left alone.
	keySet(dirs[3]).Create()
	own := readOr(t, p(3))
	err := cs[3].ShareFiles(ctx, keySet(dirs[3]))
	if !errors.Is(err, ErrSecretMismatch) || readOr(t, p(3)) != own {
		t.Fatalf("different local key: %v", err)
	}
	t.Log(err)
	// Sharing again what is shared is a no-op.
	if err := cs[0].ShareFiles(ctx, keySet(dirs[0])); err != nil {
		t.Fatal(err)
	}
	// Nothing shared, nothing local, no Create: nothing happens.
	if err := cs[0].ShareFiles(ctx, SecretFiles{Name: "none", Paths: map[string]string{"a": filepath.Join(dirs[0], "none")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "none")); err == nil {
		t.Fatal("a file was invented")
	}
}
