package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxFileSize is the largest configuration file read (the main file and each
// included file). Real files are a few KiB; SlapOS renders one small file per
// cluster.
const MaxFileSize = 4 << 20

// MaxTotalSize bounds the bytes read for one Load, all files together.
const MaxTotalSize = 64 << 20

// MaxIncludeFiles bounds the number of *.toml files read from the include
// directory.
const MaxIncludeFiles = 10000

// readConfigFile reads one configuration file: a regular file (a symbolic link
// is followed, its target must be regular) of at most limit bytes. A FIFO, a
// device (/dev/zero), a socket or a directory is refused without reading, and
// never blocks: the path is checked before it is opened, opened non-blocking,
// and the opened file is checked again (same file, still regular), so a swap
// between the check and the open is caught too. The read itself stops at
// limit+1 bytes whatever the file claims. Errors are short ("not a regular
// file (named pipe)"); the caller names the file.
func readConfigFile(path string, limit int64) ([]byte, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, errors.New(unwrapPathError(err))
	}
	if err := regular(before, limit); err != nil {
		return nil, err
	}
	// O_NONBLOCK: should path have become a FIFO since the Stat, the open does
	// not wait for a writer (the Fstat below then refuses it).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, errors.New(unwrapPathError(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errors.New(unwrapPathError(err))
	}
	if err := regular(st, limit); err != nil {
		return nil, err
	}
	if !os.SameFile(before, st) {
		return nil, errors.New("file replaced while being opened")
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, errors.New(unwrapPathError(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %s", sizeText(limit))
	}
	return b, nil
}

// regular refuses anything but a regular file of at most limit bytes.
func regular(st fs.FileInfo, limit int64) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fileType(st.Mode()))
	}
	if st.Size() > limit {
		return fmt.Errorf("larger than %s (%d bytes)", sizeText(limit), st.Size())
	}
	return nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "irregular file"
}

func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
