package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The xbstream format of mariabackup --stream=xbstream (extra/mariabackup/xbstream.h): a
// sequence of chunks, each "XBSTCK01", a flags byte, a type byte ('P' payload, 'E' end of
// a file), a little-endian uint32 path length and the path; a payload chunk then has a
// uint64 payload length, a uint64 offset in the file, a uint32 CRC-32 (ISO 3309, zlib's)
// of the payload, and the payload. Every file of the stream ends with an 'E' chunk.
const (
	xbMagic         = "XBSTCK01"
	xbTypePayload   = 'P'
	xbTypeEOF       = 'E'
	xbFlagIgnorable = 0x01
	xbMaxPath       = 4096
	xbMaxPayload    = 1 << 30
)

// ErrCorruptStream is wrapped by every error about a stream that is not a complete,
// intact xbstream: a bad magic, a checksum mismatch, a truncated chunk, a file without its
// end marker.
var ErrCorruptStream = errors.New("corrupt or truncated xbstream")

// StreamInfo is what a read of a whole xbstream learnt.
type StreamInfo struct {
	Files    int               // files completed (their end chunk seen)
	Bytes    int64             // payload bytes
	Small    map[string][]byte // the small metadata files kept (xtrabackup_binlog_info, ...)
	Complete bool              // the stream ended cleanly: every file ended, no partial chunk
}

// metadataFiles are the files of a backup whose content StreamInfo keeps: they say at which
// position the backup was taken.
var metadataFiles = map[string]bool{
	"xtrabackup_binlog_info": true, "mariadb_backup_binlog_info": true,
	"xtrabackup_info": true, "mariadb_backup_info": true,
	"xtrabackup_checkpoints": true, "mariadb_backup_checkpoints": true,
	"xtrabackup_slave_info": true, "mariadb_backup_slave_info": true,
}

// ChunkSink receives the payload chunks of a stream as they are read and checked.
type ChunkSink interface {
	Payload(path string, offset int64, data []byte) error
	EndFile(path string) error
}

// ReadStream reads a whole xbstream from r, checking every chunk's checksum and that every
// file it starts also ends, and hands the payloads to sink (nil: only check). Any defect
// ends the read with an error wrapping ErrCorruptStream that says where.
func ReadStream(r io.Reader, sink ChunkSink) (StreamInfo, error) {
	info := StreamInfo{Small: map[string][]byte{}}
	br := bufio.NewReaderSize(r, 1<<20)
	open := map[string]bool{}
	var pos int64 // stream offset, for messages
	head := make([]byte, 14)
	var payload []byte
	var lastErr error // the read error behind a cut: a write that failed (a full disk) is not a corrupt stream
	corrupt := func(format string, a ...any) error {
		if lastErr != nil && lastErr != io.EOF && lastErr != io.ErrUnexpectedEOF {
			return fmt.Errorf("stream at byte %d: %w", pos, lastErr)
		}
		return fmt.Errorf("%w: at byte %d: %s", ErrCorruptStream, pos, fmt.Sprintf(format, a...))
	}
	readFull := func(b []byte) (int, error) {
		n, err := io.ReadFull(br, b)
		lastErr = err
		return n, err
	}
	for {
		n, err := readFull(head)
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, corrupt("chunk header cut after %d of 14 bytes", n)
		}
		if string(head[:8]) != xbMagic {
			return info, corrupt("bad chunk magic %q", head[:8])
		}
		flags, typ := head[8], head[9]
		plen := binary.LittleEndian.Uint32(head[10:14])
		if plen == 0 || plen > xbMaxPath {
			return info, corrupt("path length %d", plen)
		}
		pathb := make([]byte, plen)
		if _, err := readFull(pathb); err != nil {
			return info, corrupt("path cut")
		}
		path := string(pathb)
		pos += 14 + int64(plen)
		switch typ {
		case xbTypeEOF:
			if !open[path] {
				// mariabackup ends files it streamed; an empty file has only its end chunk.
				open[path] = true
			}
			delete(open, path)
			info.Files++
			if sink != nil {
				if err := sink.EndFile(path); err != nil {
					return info, err
				}
			}
			continue
		case xbTypePayload:
		default:
			if flags&xbFlagIgnorable == 0 {
				return info, corrupt("unknown chunk type %q for %s", typ, path)
			}
		}
		var fix [20]byte
		if _, err := readFull(fix[:]); err != nil {
			return info, corrupt("payload header of %s cut", path)
		}
		size := binary.LittleEndian.Uint64(fix[0:8])
		offset := binary.LittleEndian.Uint64(fix[8:16])
		sum := binary.LittleEndian.Uint32(fix[16:20])
		if size > xbMaxPayload {
			return info, corrupt("payload of %d bytes for %s", size, path)
		}
		if cap(payload) < int(size) {
			payload = make([]byte, size)
		}
		payload = payload[:size]
		if n, err := readFull(payload); err != nil {
			return info, corrupt("payload of %s cut after %d of %d bytes", path, n, size)
		}
		pos += 20 + int64(size)
		if typ != xbTypePayload {
			continue // an ignorable chunk of a newer format
		}
		if got := crc32.ChecksumIEEE(payload); got != sum {
			return info, corrupt("checksum mismatch in %s at offset %d (stored %08x, computed %08x)", path, offset, sum, got)
		}
		open[path] = true
		info.Bytes += int64(size)
		if metadataFiles[path] && offset+size < 1<<20 {
			b := info.Small[path]
			if int(offset+size) > len(b) {
				b = append(b, make([]byte, int(offset+size)-len(b))...)
			}
			copy(b[offset:], payload)
			info.Small[path] = b
		}
		if sink != nil {
			if err := sink.Payload(path, int64(offset), payload); err != nil {
				return info, err
			}
		}
	}
	if len(open) > 0 {
		var names []string
		for p := range open {
			names = append(names, p)
		}
		if len(names) > 3 {
			names = append(names[:3], "...")
		}
		return info, corrupt("stream ends inside %d file(s) (%s): truncated", len(open), strings.Join(names, ", "))
	}
	if info.Files == 0 {
		return info, corrupt("empty stream")
	}
	info.Complete = true
	return info, nil
}

// dirSink writes a stream's files under a directory, as mbstream -x does.
type dirSink struct {
	dir   string
	files map[string]*os.File
}

func newDirSink(dir string) *dirSink { return &dirSink{dir: dir, files: map[string]*os.File{}} }

func (d *dirSink) file(path string) (*os.File, error) {
	if f := d.files[path]; f != nil {
		return f, nil
	}
	clean := filepath.Clean(path)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("%w: path %q leaves the target directory", ErrCorruptStream, path)
	}
	full := filepath.Join(d.dir, clean)
	if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(full, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	d.files[path] = f
	return f, nil
}

func (d *dirSink) Payload(path string, offset int64, data []byte) error {
	f, err := d.file(path)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, offset); err != nil {
		return fmt.Errorf("extract %s: %w", path, err)
	}
	return nil
}

func (d *dirSink) EndFile(path string) error {
	f, err := d.file(path)
	if err != nil {
		return err
	}
	delete(d.files, path)
	if err := f.Close(); err != nil {
		return fmt.Errorf("extract %s: %w", path, err)
	}
	return nil
}

func (d *dirSink) close() {
	for _, f := range d.files {
		f.Close()
	}
}

// Extract writes the files of an xbstream under dir (created), checking it as ReadStream
// does. A defective stream leaves a partial directory and an error wrapping
// ErrCorruptStream.
func Extract(r io.Reader, dir string) (StreamInfo, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return StreamInfo{}, err
	}
	s := newDirSink(dir)
	defer s.close()
	return ReadStream(r, s)
}

// binlogGTID reads the GTID position from a backup's binlog info: "file\tpos\tgtid" in
// xtrabackup_binlog_info, or "GTID of the last change '...'" in xtrabackup_info.
func binlogGTID(small map[string][]byte) (string, bool) {
	for _, name := range []string{"mariadb_backup_binlog_info", "xtrabackup_binlog_info"} {
		if b, ok := small[name]; ok {
			fields := strings.Split(strings.TrimSpace(string(b)), "\t")
			if len(fields) >= 3 {
				return strings.TrimSpace(fields[2]), true
			}
			if len(fields) == 2 {
				return "", true // a server without GTID
			}
		}
	}
	for _, name := range []string{"mariadb_backup_info", "xtrabackup_info"} {
		if b, ok := small[name]; ok {
			const marker = "GTID of the last change '"
			if i := bytes.Index(b, []byte(marker)); i >= 0 {
				rest := b[i+len(marker):]
				if j := bytes.IndexByte(rest, '\''); j >= 0 {
					return string(rest[:j]), true
				}
			}
		}
	}
	return "", false
}
