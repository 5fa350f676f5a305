package tenant

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Tenant passwords are published (in the URLs) to the API users allowed to read them, so the
// manager must keep them; it keeps them sealed. The tracking row (replicated to every node,
// and so in every backup) holds the password encrypted with AES-256-GCM under the tenant
// key, <working dir>/tenants/tenant.key (32 random bytes, hex; file 0600 in a 0700
// directory), created on first need and never overwritten. The reference and cluster are
// authenticated with it, so a sealed password copied to another row does not open. Losing
// the key loses the published passwords, not the accounts (the databases keep working).

// KeyFile is the tenant key's path relative to the working directory.
const KeyFile = "tenants/tenant.key"

// Sealer encrypts and decrypts tenant passwords.
type Sealer struct{ aead cipher.AEAD }

// LoadOrCreateSealer reads the tenant key of a working directory, creating it when missing
// (two processes creating it at once agree: the first link wins, the other reads it).
func LoadOrCreateSealer(workDir string) (*Sealer, error) {
	if workDir == "" {
		return nil, errors.New("tenant key: empty working directory (monitoring-datadir)")
	}
	path := filepath.Join(workDir, filepath.FromSlash(KeyFile))
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return NewSealer(key)
}

// NewSealer uses a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("tenant key: %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: g}, nil
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("tenant key %s: not 64 hexadecimal digits", path)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tenant key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("tenant key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tenant.key.tmp*")
	if err != nil {
		return nil, fmt.Errorf("tenant key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err == nil {
		_, err = f.WriteString(hex.EncodeToString(key) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("tenant key: %w", err)
		}
	} else {
		f.Close()
		return nil, fmt.Errorf("tenant key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("tenant key: %w", err)
	}
	return key, nil
}

// sealVersion prefixes sealed values, so that the format can change.
const sealVersion = 1

func aad(cluster, reference string) []byte {
	return []byte("tenant\x00" + strings.ToLower(cluster) + "\x00" + reference)
}

// Seal encrypts a password for one reference of one cluster.
func (s *Sealer) Seal(cluster, reference, password string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, []byte(password), aad(cluster, reference)), nil
}

// ErrUnsealable: the sealed password was not made with this key for this reference.
var ErrUnsealable = errors.New("the stored password cannot be decrypted with this manager's tenant key")

// Open decrypts a password sealed by Seal.
func (s *Sealer) Open(cluster, reference string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return "", ErrUnsealable
	}
	p, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad(cluster, reference))
	if err != nil {
		return "", ErrUnsealable
	}
	return string(p), nil
}
