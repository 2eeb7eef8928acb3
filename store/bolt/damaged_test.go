package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A damaged file, opened in a child process: before Open checked, a file
// cut short killed the process with SIGBUS and a corrupted page panicked
// or faulted, and a test binary opening one in process would die with it.

// childDirEnv tells the test binary it is the child, and which data
// directory to open.
const childDirEnv = "WXTOKEN_BOLT_OPEN_DIR"

// TestOpenChild is the child: it opens the store, reads every key, writes
// one, and prints what happened. It does nothing in a normal run.
func TestOpenChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("run by TestOpenDamaged")
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Printf("open failed (damaged: %t): %v\n", errors.Is(err, ErrDamaged), err)
		return
	}
	defer s.Close()
	keys, err := s.List(t.Context(), "")
	for _, k := range keys {
		if err == nil {
			_, err = s.Get(t.Context(), k)
		}
	}
	if err == nil {
		_, err = s.Put(t.Context(), "after", []byte("x"), 0)
	}
	fmt.Printf("opened: %d keys, %v\n", len(keys), err)
}

// openInChild opens dir in a child process and returns its output.
func openInChild(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenChild$", "-test.count=1")
	// Under the race detector a process lingers a second at exit unless
	// told otherwise.
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("child: %v", err)
	}
	return string(out)
}

// filled creates a store with enough authorizer-like records to take
// several pages of each kind, and returns its file's bytes.
func filled(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		v := fmt.Sprintf(`{"token":"%d_abcdefghijklmnopqrstuvwxyz","state":"refreshtoken@@@%d"}`, i, i)
		if _, err := s.Put(t.Context(), fmt.Sprintf("token/wxauth%04d", i), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// withFile returns a new data directory holding data as its file.
func withFile(t *testing.T, data []byte) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, FileName)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// fileMeta is what the tests need of the meta page in use: bbolt keeps two,
// at pages 0 and 1, and uses the one with the higher transaction id.
type fileMeta struct{ pageSize, root, freelist, pages int }

func currentMeta(data []byte) fileMeta {
	ne := binary.NativeEndian
	at := func(page, field int) uint64 { return ne.Uint64(data[page*4096+16+field:]) }
	p := 0
	if at(1, 48) > at(0, 48) {
		p = 1
	}
	return fileMeta{pageSize: int(ne.Uint32(data[p*4096+16+8:])), root: int(at(p, 16)), freelist: int(at(p, 32)), pages: int(at(p, 40))}
}

// kvElement returns the offset in data of the kv bucket's entry in the
// root bucket's page, a leaf. A leaf element is flags, pos, ksize, vsize
// (4 bytes each); its key is pos bytes from the element, and its value
// follows the key. A bucket's value starts with its root page id.
func kvElement(t *testing.T, data []byte, m fileMeta) int {
	t.Helper()
	ne, root := binary.NativeEndian, m.root*m.pageSize
	for i := range int(ne.Uint16(data[root+10:])) {
		e := root + 16 + 16*i
		pos, ksize := int(ne.Uint32(data[e+4:])), int(ne.Uint32(data[e+8:]))
		if string(data[e+pos:e+pos+ksize]) == "kv" {
			return e
		}
	}
	t.Fatal("no kv bucket in the root page")
	return 0
}

// kvPages follows the tree from the meta page in use to the kv bucket's
// root, a branch page for this many records, and to that branch's first
// child, a leaf: pages that are in use, not earlier copies bbolt freed.
func kvPages(t *testing.T, data []byte, m fileMeta) (branch, leaf int) {
	t.Helper()
	ne, e := binary.NativeEndian, kvElement(t, data, m)
	branch = int(ne.Uint64(data[e+int(ne.Uint32(data[e+4:]))+int(ne.Uint32(data[e+8:])):]))
	// A branch element is pos, ksize (4 bytes each), then the child's id.
	if flags := ne.Uint16(data[branch*m.pageSize+8:]); flags != 0x01 {
		t.Fatalf("kv's root page %d has flags %#x, want a branch", branch, flags)
	}
	return branch, int(ne.Uint64(data[branch*m.pageSize+16+8:]))
}

func TestOpenDamaged(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, data []byte) []byte
	}{
		{"cut inside the freelist page", func(t *testing.T, data []byte) []byte {
			// The freelist page lies past the end of the file but inside
			// bbolt's map, which is a power of two: reading it is a SIGBUS.
			m := currentMeta(data)
			off := m.freelist * m.pageSize
			if off&(off-1) == 0 {
				t.Fatalf("freelist at offset %d, a power of two: the cut would fall outside the map", off)
			}
			return data[:off-1]
		}},
		{"cut short by a page", func(t *testing.T, data []byte) []byte {
			m := currentMeta(data)
			return data[:(m.pages-1)*m.pageSize]
		}},
		{"cut after the meta pages", func(t *testing.T, data []byte) []byte {
			return data[:2*currentMeta(data).pageSize]
		}},
		{"overwritten with garbage", func(t *testing.T, data []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			return data
		}},
		{"pages after the meta pages overwritten with garbage", func(t *testing.T, data []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := 2 * currentMeta(data).pageSize; i < len(data); i++ {
				data[i] = byte(r.Uint32())
			}
			return data
		}},
		{"byte flipped in a leaf page's type", func(t *testing.T, data []byte) []byte {
			m := currentMeta(data)
			_, leaf := kvPages(t, data, m)
			data[leaf*m.pageSize+8] ^= 0xff
			return data
		}},
		{"byte flipped in a leaf page's count", func(t *testing.T, data []byte) []byte {
			m := currentMeta(data)
			_, leaf := kvPages(t, data, m)
			data[leaf*m.pageSize+11] ^= 0xff
			return data
		}},
		{"byte flipped in a branch page's child", func(t *testing.T, data []byte) []byte {
			// The third byte of the first child's page id: it points far
			// past the end of the file.
			m := currentMeta(data)
			branch, _ := kvPages(t, data, m)
			data[branch*m.pageSize+16+8+2] ^= 0xff
			return data
		}},
		{"byte flipped in a key", func(t *testing.T, data []byte) []byte {
			// The leaf's first key sorts after the keys that follow it.
			m := currentMeta(data)
			_, leaf := kvPages(t, data, m)
			p := leaf * m.pageSize
			pos := int(binary.NativeEndian.Uint32(data[p+16+4:]))
			data[p+16+pos] ^= 0xff
			return data
		}},
		{"byte flipped in the kv bucket's name", func(t *testing.T, data []byte) []byte {
			e := kvElement(t, data, currentMeta(data))
			data[e+int(binary.NativeEndian.Uint32(data[e+4:]))] ^= 0xff
			return data
		}},
		{"byte flipped in the freelist page's count", func(t *testing.T, data []byte) []byte {
			m := currentMeta(data)
			data[m.freelist*m.pageSize+10] ^= 0xff
			return data
		}},
	}
	healthy := filled(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := withFile(t, tt.damage(t, bytes.Clone(healthy)))
			out := openInChild(t, dir)
			if !strings.Contains(out, "open failed (damaged: true)") || !strings.Contains(out, path) {
				t.Errorf("opening it: want ErrDamaged naming %s; the child said:\n%s", path, out)
			}
			for _, crash := range []string{"panic", "fatal error", "SIGBUS", "SIGSEGV", "goroutine "} {
				if strings.Contains(out, crash) {
					t.Fatalf("opening it crashed the process:\n%s", out)
				}
			}
		})
	}
}

// TestOpenTornMeta: a meta page that fails its checksum, as a power cut
// while bbolt writes it leaves it, is not damage: bbolt falls back to the
// other one, and so does Open.
func TestOpenTornMeta(t *testing.T) {
	data := filled(t)
	p := 0
	if binary.NativeEndian.Uint64(data[4096+16+48:]) > binary.NativeEndian.Uint64(data[16+48:]) {
		p = 1
	}
	data[p*4096+16+40] ^= 0xff // the newer meta's page count
	dir, _ := withFile(t, data)
	if out := openInChild(t, dir); !strings.Contains(out, "opened: 199 keys, <nil>") {
		t.Fatalf("want the store opened at the previous transaction, 199 keys; the child said:\n%s", out)
	}
}
