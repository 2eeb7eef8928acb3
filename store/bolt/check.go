package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"

	bbolt "go.etcd.io/bbolt"
)

// A damaged file is refused at Open, with an error naming it. bbolt reads
// its pages through a memory map and trusts what it finds there: a file cut
// short faults when a page past its end is read (SIGBUS, which no recover
// catches and which kills the process), and a corrupted page panics or
// faults, at open or later on some request. So Open checks, in order:
// the meta pages and the file's size, before bbolt maps anything; every
// page, walked in the opening goroutine where a fault can be recovered;
// then bbolt's own consistency check.

// ErrDamaged reports a data file that is not a whole, consistent bbolt
// file: cut short, overwritten, or with a corrupted page.
var ErrDamaged = errors.New("bolt: data file is damaged")

func damaged(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; restore it from a backup (moving it aside starts an empty store, "+
		"without the stored tickets and authorizer refresh tokens)", ErrDamaged, path, fmt.Sprintf(format, args...))
}

// The layout of a bbolt (v1, file format 2) meta page: a 16-byte page
// header, then magic, version, page size and flags (4 bytes each), the root
// bucket's page and sequence, the freelist's page, the high-water mark (the
// number of pages in use), the transaction id, and an FNV-64a checksum of
// everything before it, in the machine's byte order. bbolt keeps two meta
// pages, 0 and 1, and uses the valid one with the higher transaction id,
// so that a crash while one is written leaves the other.
const (
	pageHeaderSize = 16
	metaSize       = 64
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	noFreelist     = ^uint64(0)
)

type meta struct {
	pageSize                   uint64
	root, freelist, pages, txn uint64
}

// readMeta reads the meta page at off; ok is false if there is none, or a
// torn or corrupted one.
func readMeta(f io.ReaderAt, off int64) (m meta, ok bool) {
	var b [pageHeaderSize + metaSize]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return meta{}, false
	}
	d, ne := b[pageHeaderSize:], binary.NativeEndian
	h := fnv.New64a()
	h.Write(d[:56])
	if ne.Uint32(d[0:]) != metaMagic || ne.Uint32(d[4:]) != metaVersion || h.Sum64() != ne.Uint64(d[56:]) {
		return meta{}, false
	}
	return meta{pageSize: uint64(ne.Uint32(d[8:])), root: ne.Uint64(d[16:]), freelist: ne.Uint64(d[32:]),
		pages: ne.Uint64(d[40:]), txn: ne.Uint64(d[48:])}, true
}

// checkFile refuses a file whose meta pages are all invalid, or that is
// shorter than the pages its meta page says are in use, or whose meta
// page points outside them. It reads with plain reads, no map. An absent
// or empty file is fine: bbolt creates it.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", path, err)
	}
	size := uint64(fi.Size())
	if size == 0 {
		return nil
	}
	// Meta page 0 gives the page size, and meta page 1 is one page in. If
	// page 0 is unreadable, look for page 1 where bbolt does: at each
	// possible page size from 1 KiB to 16 MiB.
	var metas []meta
	if m, ok := readMeta(f, 0); ok {
		metas = append(metas, m)
		if m1, ok := readMeta(f, int64(m.pageSize)); ok && m1.pageSize == m.pageSize {
			metas = append(metas, m1)
		}
	} else {
		for ps := uint64(1 << 10); ps <= 1<<24 && ps < size; ps <<= 1 {
			if m1, ok := readMeta(f, int64(ps)); ok && m1.pageSize == ps {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return damaged(path, "no valid meta page: it is not a bbolt file, or its first pages were overwritten")
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txn > m.txn {
		m = metas[1]
	}
	ps := m.pageSize
	switch {
	case ps < 1<<10 || ps > 1<<24 || ps&(ps-1) != 0:
		return damaged(path, "its meta page records a page size of %d bytes", ps)
	case m.pages < 2 || m.pages > size/ps:
		return damaged(path, "the file is %d bytes, but its meta page records %d pages of %d bytes (%d bytes): it was cut short",
			size, m.pages, ps, m.pages*ps)
	case m.root < 2 || m.root >= m.pages:
		return damaged(path, "its meta page puts the root bucket at page %d, outside the %d pages in use", m.root, m.pages)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pages):
		return damaged(path, "its meta page puts the freelist at page %d, outside the %d pages in use", m.freelist, m.pages)
	}
	return nil
}

// verify reads every page reachable from the root, then runs bbolt's
// consistency check. Call it under guard.
func verify(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		// tx.Check reads pages on a goroutine of its own, where a fault
		// (a page id pointing past the map) would kill the process. The
		// walk reads every page it will read first, here, where guard
		// turns a fault or a panic into an error.
		found := false
		err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			found = found || bytes.Equal(name, bucket)
			return walk(b, int(tx.Size()))
		})
		if err != nil {
			return err
		}
		if !found && tx.Size() > int64(4*db.Info().PageSize) {
			// Only a file bbolt has just created, with its two meta
			// pages, a freelist and an empty root, lacks the bucket
			// every write goes to.
			return fmt.Errorf("no %q bucket in %d bytes of pages", bucket, tx.Size())
		}
		// Drain the channel: the check goes on reading the transaction's
		// pages until it closes it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// walk reads every page of b and of its nested buckets. An entry larger
// than the file has a corrupted size: reading it would run off the map.
func walk(b *bbolt.Bucket, size int) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k)+len(v) > size {
			return fmt.Errorf("an entry of %d bytes in %d bytes of pages", len(k)+len(v), size)
		}
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				if err := walk(nested, size); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// guard runs f, turning a panic in it, or a fault reading the memory-mapped
// file, into ErrDamaged. It is the last resort behind checkFile and verify.
func guard(path string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, "reading it failed: %v", r)
		}
	}()
	return f()
}
