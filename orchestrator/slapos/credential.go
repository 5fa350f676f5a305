package slapos

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"replication-manager-pro/ipv6"
)

// Partition credentials.
//
// The manager keeps one random 256-bit secret, the partition key, in
// <working dir>/slapos/partition.key (hex, mode 0600, directory 0700; the working dir is
// monitoring-datadir, where the node directories live). It is created on first need by
// `slapos render` or the daemon, whichever comes first, and never overwritten.
//
// A node's partition credential is hex(HMAC-SHA256(key, "partition" NUL cluster NUL
// host:port)), cluster lower-cased and host:port in canonical form (see canonicalAddr):
// 64 hexadecimal digits. `slapos render` writes it into what the partition is requested with
// (partition-requests.json, parameter repman-credential) and, for every node including the
// ProxySQL of the root partition, into partition-credentials.json. The partition sends it
// as "Authorization: Bearer <credential>" (never in the URL, which ends up in logs). The
// manager recomputes the expected value and compares in constant time: a credential is only
// good for its own node of its own cluster. Deleting the key file (and rendering again)
// revokes every credential.
//
// The same key derives the password of the cluster's job account (JobPassword), with its
// own prefix so that neither value reveals the other.

// PartitionKeyFile is the key's path relative to the working directory.
const PartitionKeyFile = "slapos/partition.key"

// CredentialHeader is the header a partition sends its credential in, as "Bearer <cred>".
const CredentialHeader = "Authorization"

// CredentialParameter is the name of the credential in a partition's request parameters
// (partition-requests.json).
const CredentialParameter = "repman-credential"

// PartitionKeyPath returns where the partition key of a working directory is kept.
func PartitionKeyPath(workDir string) string {
	return filepath.Join(workDir, filepath.FromSlash(PartitionKeyFile))
}

// LoadOrCreatePartitionKey reads the partition key of workDir, creating it (0600) when it
// does not exist. Two processes creating it at once agree: the first link wins and the
// other reads it.
func LoadOrCreatePartitionKey(workDir string) ([]byte, error) {
	if workDir == "" {
		return nil, errors.New("partition key: empty working directory (monitoring-datadir)")
	}
	path := PartitionKeyPath(workDir)
	if key, err := readPartitionKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("partition key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("partition key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".partition.key.tmp*")
	if err != nil {
		return nil, fmt.Errorf("partition key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("partition key: %w", werr)
	}
	// CreateTemp made it 0600. Link, unlike rename, never replaces an existing key.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readPartitionKey(path)
		}
		return nil, fmt.Errorf("partition key: %w", err)
	}
	return key, nil
}

func readPartitionKey(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 1024 {
		return nil, fmt.Errorf("partition key %s: not a small regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("partition key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("partition key %s: not 32+ hex-encoded bytes (delete it to generate a new one, then render again)", path)
	}
	return key, nil
}

// canonicalAddr is the form of a node address the credential is computed on: an IP literal
// in netip's canonical text (lower case, shortest IPv6, an IPv4-mapped IPv6 as its IPv4), a
// name lower-cased, joined with the port ("[2001:db8::1]:2099", "10.0.0.1:6032").
func canonicalAddr(addr ipv6.HostPort) string {
	host := ipv6.Unbracket(addr.Host)
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	} else {
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

func derive(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

// PartitionCredential returns the credential of the node at addr in cluster: 64 hex digits.
func PartitionCredential(key []byte, cluster string, addr ipv6.HostPort) string {
	return hex.EncodeToString(derive(key, "partition", strings.ToLower(cluster), canonicalAddr(addr)))
}

// JobPassword returns the password of the cluster's job account (JobUser@localhost), which
// anonymous bundles carry in etc/mysql/dbjob.cnf instead of the db-servers-credential:
// 32 hex digits.
func JobPassword(key []byte, cluster string) string {
	return hex.EncodeToString(derive(key, "dbjob", strings.ToLower(cluster)))[:32]
}

// bearer returns the Bearer value of a request's Authorization header, "" when absent.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get(CredentialHeader)
	if h == "" {
		return "", false
	}
	scheme, v, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(v), true
}

// looksLikeCredential tells a partition credential (64 hex digits) from a user's JWT.
func looksLikeCredential(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// credentialMatches compares a presented credential with the expected one in constant time.
func credentialMatches(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}

// keyCache keeps the partition keys read, by path.
type keyCache struct{ m sync.Map }

func (k *keyCache) get(workDir string) ([]byte, error) {
	path := PartitionKeyPath(workDir)
	if v, ok := k.m.Load(path); ok {
		return v.([]byte), nil
	}
	key, err := LoadOrCreatePartitionKey(workDir)
	if err != nil {
		return nil, err
	}
	v, _ := k.m.LoadOrStore(path, key)
	return v.([]byte), nil
}
