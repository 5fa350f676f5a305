package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Credentials log a program in to a server.
type Credentials struct {
	User     string
	Password string
}

// ErrMissingTool is wrapped when a program a backup needs is not installed.
var ErrMissingTool = errors.New("program not installed")

// FindTool returns the program to run: configured when set (a path or a name in PATH),
// else the first of names found in PATH. The error names the Debian package providing it.
func FindTool(configured, debianPackage string, names ...string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v (Debian package %s)", ErrMissingTool, configured, err, debianPackage)
		}
		return p, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none of %s is in PATH; install Debian's %s", ErrMissingTool, strings.Join(names, ", "), debianPackage)
}

// optionFile writes a private (0600) MariaDB option file holding the credentials under
// the groups the client programs read, and returns its path and a remove function. The
// password never appears on a command line.
func optionFile(dir string, c Credentials, groups ...string) (string, func(), error) {
	f, err := os.CreateTemp(dir, ".rmp-cred-*.cnf")
	if err != nil {
		return "", func() {}, fmt.Errorf("option file: %w", err)
	}
	remove := func() { os.Remove(f.Name()) }
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		remove()
		return "", func() {}, err
	}
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&b, "[%s]\nuser=%s\npassword=%s\n", g, optionValue(c.User), optionValue(c.Password))
	}
	_, werr := f.WriteString(b.String())
	if cerr := f.Close(); werr != nil || cerr != nil {
		remove()
		return "", func() {}, fmt.Errorf("option file: %v %v", werr, cerr)
	}
	return f.Name(), remove, nil
}

// optionValue quotes a value for a MariaDB option file.
func optionValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

// tailBuffer keeps the last bytes written to it: a program's stderr for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTail(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, " | ")
}

// runErr describes a failed program run: the program, its exit, the end of its stderr.
func runErr(ctx context.Context, bin string, err error, stderr string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", filepath.Base(bin), ctx.Err())
	}
	return fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, lastLines(stderr, 4))
}

// scratchDir returns dir if set, else the system's temporary directory.
func scratchDir(dir string) string {
	if dir == "" {
		return os.TempDir()
	}
	return dir
}
