package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chunk builds one xbstream chunk as mariadb-backup writes it.
func chunk(path string, typ byte, offset uint64, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString(xbMagic)
	b.WriteByte(0)
	b.WriteByte(typ)
	binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	if typ == xbTypeEOF {
		return b.Bytes()
	}
	binary.Write(&b, binary.LittleEndian, uint64(len(payload)))
	binary.Write(&b, binary.LittleEndian, offset)
	binary.Write(&b, binary.LittleEndian, crc32.ChecksumIEEE(payload))
	b.Write(payload)
	return b.Bytes()
}

func sampleStream() []byte {
	var s []byte
	s = append(s, chunk("ibdata1", 'P', 0, bytes.Repeat([]byte("a"), 100))...)
	s = append(s, chunk("ibdata1", 'P', 100, bytes.Repeat([]byte("b"), 50))...)
	s = append(s, chunk("ibdata1", 'E', 0, nil)...)
	s = append(s, chunk("xtrabackup_binlog_info", 'P', 0, []byte("mariadb-bin.000002\t3302\t0-1-42\n"))...)
	s = append(s, chunk("xtrabackup_binlog_info", 'E', 0, nil)...)
	return s
}

func TestReadStreamKeepsPositionAndExtracts(t *testing.T) {
	dir := t.TempDir()
	info, err := Extract(bytes.NewReader(sampleStream()), dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Files != 2 || info.Bytes != 150+int64(len("mariadb-bin.000002\t3302\t0-1-42\n")) || !info.Complete {
		t.Fatalf("info %+v", info)
	}
	if g, ok := binlogGTID(info.Small); !ok || g != "0-1-42" {
		t.Fatalf("gtid %q %v", g, ok)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ibdata1"))
	if string(b) != strings.Repeat("a", 100)+strings.Repeat("b", 50) {
		t.Fatalf("extracted %q", b)
	}
}

func TestReadStreamRefusesDefects(t *testing.T) {
	good := sampleStream()
	flipped := append([]byte(nil), good...)
	flipped[60] ^= 0xff // inside the first payload
	cases := map[string][]byte{
		"truncated inside a payload": good[:70],
		"truncated between files":    good[:len(chunk("ibdata1", 'P', 0, bytes.Repeat([]byte("a"), 100)))],
		"bit flip":                   flipped,
		"garbage":                    []byte("this is not an xbstream at all, only text"),
		"empty":                      nil,
		"path escape":                append(chunk("../etc/x", 'P', 0, []byte("x")), chunk("../etc/x", 'E', 0, nil)...),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Extract(bytes.NewReader(s), t.TempDir())
			if !errors.Is(err, ErrCorruptStream) {
				t.Fatalf("got %v, want ErrCorruptStream", err)
			}
		})
	}
}

func TestBinlogGTIDFromInfo(t *testing.T) {
	g, ok := binlogGTID(map[string][]byte{"xtrabackup_info": []byte("binlog_pos = filename 'b.000001', position '385', GTID of the last change '0-1-7,1-2-3'\n")})
	if !ok || g != "0-1-7,1-2-3" {
		t.Fatalf("%q %v", g, ok)
	}
	if _, ok := binlogGTID(map[string][]byte{}); ok {
		t.Fatal("no info: no position")
	}
}

func TestExpiredKeepsOnePerPeriodAndTheNewestUsable(t *testing.T) {
	base := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	var all []Meta
	for i := 0; i < 10; i++ { // one physical backup every 6 hours, newest first at base
		all = append(all, Meta{ID: string(rune('a' + i)), Kind: Physical, Start: base.Add(-time.Duration(i) * 6 * time.Hour), SHA256: "x", Size: 1, GTID: "0-1-1"})
	}
	all = append(all, Meta{ID: "old-logical", Kind: Logical, Start: base.Add(-400 * 24 * time.Hour), SHA256: "x", Size: 1, GTID: "0-1-1"})
	exp := Expired(all, Keep{Hourly: 1, Daily: 2})
	kept := map[string]bool{}
	for _, m := range all {
		kept[m.ID] = true
	}
	for _, m := range exp {
		delete(kept, m.ID)
	}
	// hourly 1: a (newest); daily 2: a (Mar 10) and d (Mar 9 18:00, the newest of Mar 9).
	want := map[string]bool{"a": true, "d": true, "old-logical": true}
	if len(kept) != len(want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	for id := range want {
		if !kept[id] {
			t.Fatalf("kept %v, want %v", kept, want)
		}
	}
	if Expired(all, Keep{}) != nil {
		t.Fatal("a zero policy expires nothing")
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"", "..", ".tmp-x", "a/b", "a b", strings.Repeat("a", 200)} {
		if ValidID(id) {
			t.Errorf("%q accepted", id)
		}
	}
	if !ValidID(NewID(Physical, time.Now())) {
		t.Error("NewID rejected")
	}
}

// A failed backup leaves nothing in the store and an earlier backup untouched.
func TestStoreAbortLeavesEarlierBackup(t *testing.T) {
	st, _ := OpenStore(t.TempDir(), "c")
	p, _ := st.Begin(Logical, "h:1", "mysqldump")
	p.Write([]byte("data"))
	first, err := p.Commit(func(m *Meta) { m.GTID = "0-1-1" })
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := st.Begin(Logical, "h:1", "mysqldump")
	p2.Write([]byte("partial"))
	p2.Abort()
	l, _ := st.List()
	if len(l) != 1 || l[0].ID != first.ID {
		t.Fatalf("store holds %+v", l)
	}
	ents, _ := os.ReadDir(st.Dir)
	if len(ents) != 1 {
		t.Fatalf("leftovers: %v", ents)
	}
}
