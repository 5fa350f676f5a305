package configurator

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Bundle returns the config.tar.gz of a database server.
func Bundle(p Params) ([]byte, error) {
	e, err := Generate(p)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := WriteTarGz(&b, e, p.Time); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteTarGz writes entries as a gzip-compressed tar. Entries carry mtime (the Unix epoch
// when zero), owner 0 and no user names, so equal inputs give equal bytes. Symlink targets
// must be relative and stay inside the tree.
func WriteTarGz(w io.Writer, entries []Entry, mtime time.Time) error {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	mtime = mtime.UTC().Truncate(time.Second)
	gz := gzip.NewWriter(w)
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := checkEntryPath(e.Path); err != nil {
			return err
		}
		h := &tar.Header{Name: e.Path, Mode: int64(e.Mode.Perm()), ModTime: mtime, Format: tar.FormatPAX}
		switch e.Kind {
		case KindDir:
			h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
		case KindFile:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		case KindSymlink:
			if err := checkLinkTarget(e.Path, e.Target); err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
		default:
			return fmt.Errorf("bundle entry %s: unknown kind %d", e.Path, e.Kind)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("bundle entry %s: %w", e.Path, err)
		}
		if e.Kind == KindFile {
			if _, err := tw.Write(e.Data); err != nil {
				return fmt.Errorf("bundle entry %s: %w", e.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func checkEntryPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("bundle entry %q: not a clean relative path", p)
	}
	return nil
}

// checkLinkTarget accepts relative targets that resolve inside the bundle.
func checkLinkTarget(name, target string) error {
	if target == "" || path.IsAbs(target) {
		return fmt.Errorf("bundle symlink %s -> %q: target must be relative", name, target)
	}
	r := path.Join(path.Dir(name), target)
	if r == ".." || strings.HasPrefix(r, "../") {
		return fmt.Errorf("bundle symlink %s -> %q: target leaves the bundle", name, target)
	}
	return nil
}

// maxUnpack bounds what Unpack writes.
const maxUnpack = 64 << 20

// Unpack extracts a bundle: entries under data/ go to dataDest (when not empty), the
// others under dest. It refuses absolute or escaping paths, symlinks leaving the tree,
// entries beneath a symlink, and anything but directories, regular files and symlinks.
// Existing files are replaced; file modes are those of the bundle.
func Unpack(r io.Reader, dest, dataDest string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	tr := tar.NewReader(gz)
	links := map[string]bool{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if err := checkEntryPath(name); err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if links[p] {
				return fmt.Errorf("unpack: %s lies beneath symlink %s", name, p)
			}
		}
		target := filepath.Join(dest, filepath.FromSlash(name))
		if dataDest != "" && (name == "data" || strings.HasPrefix(name, "data/")) {
			target = filepath.Join(dataDest, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(name, "data"), "/")))
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
			if err := os.Chmod(target, mode); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
		case tar.TypeReg:
			total += h.Size
			if total > maxUnpack {
				return fmt.Errorf("unpack: bundle larger than %d bytes", maxUnpack)
			}
			if err := writeFile(target, tr, h.Size, mode); err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}
		case tar.TypeSymlink:
			if err := checkLinkTarget(name, h.Linkname); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
			links[name] = true
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
			if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("unpack: %w", err)
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("unpack: %w", err)
			}
		default:
			return fmt.Errorf("unpack: %s: entry type %q not allowed", name, h.Typeflag)
		}
	}
	return nil
}

func writeFile(target string, r io.Reader, size int64, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	// Never write through an existing symlink.
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
