package config

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// HashPrefix marks a secret written encrypted, as replication-manager's `password` command
// prints it: "hash_" then hex(IV ‖ AES-CFB(key, secret)), the key being the bytes of the
// file monitoring-key-path (16 random bytes from its `keygen`; 24 or 32 also work). It may
// stand for a whole secret (proxysql-password = "hash_...") or for the password part of a
// credential (db-servers-credential = "repman:hash_...", each entry of a list).
const HashPrefix = "hash_"

// GenerateKey returns a new random AES-128 key, what replication-manager's keygen writes.
func GenerateKey() ([]byte, error) {
	k := make([]byte, 16)
	_, err := io.ReadFull(rand.Reader, k)
	return k, err
}

// EncryptSecret encrypts a secret with key in the hash_ form.
func EncryptSecret(key []byte, secret string) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	out := make([]byte, aes.BlockSize+len(secret))
	if _, err := io.ReadFull(rand.Reader, out[:aes.BlockSize]); err != nil {
		return "", err
	}
	cipher.NewCFBEncrypter(block, out[:aes.BlockSize]).XORKeyStream(out[aes.BlockSize:], []byte(secret))
	return HashPrefix + hex.EncodeToString(out), nil
}

// DecryptSecret decrypts a secret in the hash_ form. The error never holds the secret.
func DecryptSecret(key []byte, value string) (string, error) {
	if !strings.HasPrefix(value, HashPrefix) {
		return value, nil
	}
	raw, err := hex.DecodeString(value[len(HashPrefix):])
	if err != nil {
		return "", errors.New("not hexadecimal after hash_")
	}
	if len(raw) < aes.BlockSize {
		return "", errors.New("too short after hash_ (no IV)")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("key: %v", err)
	}
	plain := make([]byte, len(raw)-aes.BlockSize)
	cipher.NewCFBDecrypter(block, raw[:aes.BlockSize]).XORKeyStream(plain, raw[aes.BlockSize:])
	return string(plain), nil
}

// decryptValue decrypts a secret value: whole, or the password parts of a credential list.
func decryptValue(key []byte, value string) (string, error) {
	if strings.HasPrefix(value, HashPrefix) {
		return DecryptSecret(key, value)
	}
	parts := strings.Split(value, ",")
	for i, p := range parts {
		user, pass, ok := strings.Cut(p, ":")
		if !ok || !strings.HasPrefix(strings.TrimSpace(pass), HashPrefix) {
			continue
		}
		clear, err := DecryptSecret(key, strings.TrimSpace(pass))
		if err != nil {
			return "", fmt.Errorf("entry %d: %w", i+1, err)
		}
		parts[i] = user + ":" + clear
	}
	return strings.Join(parts, ","), nil
}

// hasHashed reports whether a value holds a secret in the hash_ form.
func hasHashed(value string) bool {
	if strings.HasPrefix(value, HashPrefix) {
		return true
	}
	for _, p := range strings.Split(value, ",") {
		if _, pass, ok := strings.Cut(p, ":"); ok && strings.HasPrefix(strings.TrimSpace(pass), HashPrefix) {
			return true
		}
	}
	return false
}

// ReadKeyFile reads an encryption key file (monitoring-key-path): 16, 24 or 32 bytes; a
// trailing newline is tolerated.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := readConfigFile(path, 1024)
	if err != nil {
		return nil, err
	}
	if n := len(b); n != 16 && n != 24 && n != 32 {
		if t := strings.TrimRight(string(b), "\r\n"); len(t) == 16 || len(t) == 24 || len(t) == 32 {
			return []byte(t), nil
		}
		return nil, fmt.Errorf("%d bytes, want 16, 24 or 32", n)
	}
	return b, nil
}

// decryptSecrets replaces hash_ secrets of every cluster and of [Default] by their clear
// text, with the key of each one's monitoring-key-path. A problem names the file, table and
// key where the secret was written and the key file, never the secret.
func decryptSecrets(cfg *Config, readKey func(string) ([]byte, error)) []Problem {
	keys := map[string][]byte{}
	keyErr := map[string]error{}
	load := func(path string) ([]byte, error) {
		if k, ok := keys[path]; ok {
			return k, nil
		}
		if err, ok := keyErr[path]; ok {
			return nil, err
		}
		k, err := readKey(path)
		if err != nil {
			keyErr[path] = err
			return nil, err
		}
		keys[path] = k
		return k, nil
	}
	var problems []Problem
	do := func(s *Settings, where func(key string) Problem) {
		for _, k := range registry {
			if !k.Secret || k.Kind != KindString {
				continue
			}
			v := fieldOf(s, k).String()
			if !hasHashed(v) {
				continue
			}
			key, err := load(s.MonitoringKeyPath)
			if err == nil {
				var clear string
				if clear, err = decryptValue(key, v); err == nil {
					fieldOf(s, k).SetString(clear)
					continue
				}
				p := where(k.Name)
				p.Message = "cannot decrypt the hash_ secret: " + err.Error()
				problems = append(problems, p)
				continue
			}
			p := where(k.Name)
			p.Message = fmt.Sprintf("written as a hash_ secret but the key file (monitoring-key-path) cannot be read: %s: %s", s.MonitoringKeyPath, unwrapPathError(err))
			problems = append(problems, p)
		}
	}
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		do(&c.Settings, func(key string) Problem {
			if o, ok := c.origins[key]; ok {
				if o.file == CommandLine || o.file == Environment {
					return Problem{File: o.file, Key: o.key}
				}
				return Problem{File: o.file, Section: o.section, Key: o.key}
			}
			return Problem{File: c.File, Section: c.Section, Key: key}
		})
	}
	do(&cfg.Default, func(key string) Problem { return Problem{File: cfg.Files[0], Section: "Default", Key: key} })
	return problems
}
