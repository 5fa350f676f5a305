package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Secret files every manager must hold the same copy of: what one manager hands out, the
// next leader must recognise (partition credentials derive from the partition key, tenant
// passwords are sealed with the tenant key, bundles and tenant URLs carry the cluster's CA).
// Each set is one etcd key, <prefix>/secrets/<name>, a JSON object of file contents by
// label, never bound to a lease. The first manager to share a set gives everyone its copy.

// SecretFiles is one set of files shared as a whole.
type SecretFiles struct {
	// Name is the etcd key under <prefix>/secrets/, e.g. "partition.key".
	Name string
	// Paths are the local files by label (the label, not the path, is shared: managers may
	// keep them in other directories).
	Paths map[string]string
	// Create makes the files locally when none exists and no manager shared them yet; nil:
	// the set is shared only once some manager has it.
	Create func() error
}

// ErrSecretMismatch is returned when this manager's files differ from the shared ones.
var ErrSecretMismatch = errors.New("differs from the copy the other managers share")

// ShareFiles makes this manager's copy of a set the shared one: taken from etcd when
// another manager shared it first (files written 0600, directories 0700), offered to the
// others otherwise. Files that exist and differ from the shared copy are never replaced:
// the error names them, for the operator to choose (something was handed out with each).
func (c *Coordinator) ShareFiles(ctx context.Context, set SecretFiles) error {
	key := c.key("secrets", set.Name)
	local, complete, err := readSet(set.Paths)
	if err != nil {
		return fmt.Errorf("shared %s: %w", set.Name, err)
	}
	if !complete {
		resp, err := c.cli.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("shared %s: etcd: %w", set.Name, err)
		}
		if len(resp.Kvs) > 0 {
			return c.takeSet(set, key, resp.Kvs[0].Value)
		}
		if set.Create == nil {
			return nil
		}
		if err := set.Create(); err != nil {
			return fmt.Errorf("shared %s: %w", set.Name, err)
		}
		if local, complete, err = readSet(set.Paths); err != nil || !complete {
			return fmt.Errorf("shared %s: made, then unreadable: %v", set.Name, err)
		}
		// Nothing used the new files yet: if another manager shared its own meanwhile, its
		// copy replaces them below.
		doc, _ := json.Marshal(local)
		resp2, err := c.offer(ctx, key, doc)
		if err != nil {
			return fmt.Errorf("shared %s: etcd: %w", set.Name, err)
		}
		if resp2 != nil {
			return c.takeSet(set, key, resp2)
		}
		c.log.WithField("secret", set.Name).Info("shared with the other managers")
		return nil
	}
	doc, _ := json.Marshal(local)
	theirs, err := c.offer(ctx, key, doc)
	if err != nil {
		return fmt.Errorf("shared %s: etcd: %w", set.Name, err)
	}
	if theirs == nil {
		c.log.WithField("secret", set.Name).Info("shared with the other managers")
		return nil
	}
	var shared map[string]string
	if err := json.Unmarshal(theirs, &shared); err != nil {
		return fmt.Errorf("shared %s: etcd key %s: %w", set.Name, key, err)
	}
	var differ []string
	for label, p := range set.Paths {
		if shared[label] != local[label] {
			differ = append(differ, p)
		}
	}
	if len(differ) > 0 {
		sort.Strings(differ)
		return fmt.Errorf("%s %w (etcd key %s): move them away to take the shared copy, after checking that nothing depends on them", strings.Join(differ, ", "), ErrSecretMismatch, key)
	}
	return nil
}

// offer puts doc at key unless a copy is there already, which it returns.
func (c *Coordinator) offer(ctx context.Context, key string, doc []byte) ([]byte, error) {
	resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(doc))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, err
	}
	if resp.Succeeded {
		return nil, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, errors.New("the shared copy vanished")
	}
	return kvs[0].Value, nil
}

// takeSet writes the shared copy over a missing or incomplete local one.
func (c *Coordinator) takeSet(set SecretFiles, key string, doc []byte) error {
	var shared map[string]string
	if err := json.Unmarshal(doc, &shared); err != nil {
		return fmt.Errorf("shared %s: etcd key %s: %w", set.Name, key, err)
	}
	for label, p := range set.Paths {
		content, ok := shared[label]
		if !ok {
			return fmt.Errorf("shared %s: etcd key %s has no %q", set.Name, key, label)
		}
		if err := writeSecret(p, []byte(content)); err != nil {
			return fmt.Errorf("shared %s: %w", set.Name, err)
		}
	}
	c.log.WithField("secret", set.Name).Info("took the copy the other managers share")
	return nil
}

// readSet reads the files of a set; complete is false when any is missing.
func readSet(paths map[string]string) (map[string]string, bool, error) {
	out := map[string]string{}
	for label, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		out[label] = string(b)
	}
	return out, true, nil
}

func writeSecret(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	return os.Rename(tmp, path)
}
