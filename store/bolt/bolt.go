// Package bolt is the embedded default store: one bbolt file in the data
// directory, durable on every write, opened by one wxtoken process at a
// time (a second process gets a clear error instead of a corrupt file).
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/wxtoken/wxtoken/store"
)

// FileName is the store's file inside the data directory.
const FileName = "wxtoken.db"

var bucket = []byte("kv")

// Store is a store.Store on a bbolt file.
type Store struct {
	db *bbolt.DB
	store.LocalLocker
	hub store.Hub

	commits   committer // writes waiting to be committed together
	lastPrune time.Time // of expired claims; see Claim
}

var _ store.Store = (*Store)(nil)

// ErrInUse reports that another process holds the data directory.
var ErrInUse = errors.New("bolt: data directory is in use by another process")

// Open opens or creates the store in dir, creating dir if needed. A
// damaged file is refused with ErrDamaged.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if err := checkFile(path); err != nil {
		return nil, err
	}
	var db *bbolt.DB
	err := guard(path, func() (err error) {
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrInUse, path)
	case errors.Is(err, ErrDamaged):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = guard(path, func() error { return verify(db) })
	if err != nil && !errors.Is(err, ErrDamaged) {
		err = damaged(path, "consistency check: %v", err)
	}
	if err == nil {
		err = guard(path, func() error {
			return db.Update(func(tx *bbolt.Tx) error {
				for _, name := range [][]byte{bucket, claimBucket} {
					if _, err := tx.CreateBucketIfNotExists(name); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	if err != nil {
		guard(path, db.Close)
		if !errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("bolt: init %s: %w", path, err)
		}
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.hub.Close()
	return s.db.Close()
}

// Watch implements store.Store. Only this process can write the file, so
// its own writes are all there is to report.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	return s.hub.Watch(ctx, prefix)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Entry, error) {
	if err := ready(ctx, key, nil); err != nil {
		return store.Entry{}, err
	}
	var e store.Entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucket).Get([]byte(key))
		if raw == nil {
			return store.ErrNotFound
		}
		var err error
		e, err = decode(raw)
		return err
	})
	return e, wrap(err)
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := ready(ctx, key, value); err != nil {
		return 0, err
	}
	var next uint64
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		cur, err := version(b, key)
		if err != nil {
			return err
		}
		if cur != expect {
			return store.ErrConflict
		}
		next = cur + 1
		return b.Put([]byte(key), encode(next, value))
	})
	if err != nil {
		return 0, wrap(err)
	}
	s.hub.Notify(key)
	return next, nil
}

// Rewrite implements store.Rewriter.
func (s *Store) Rewrite(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := ready(ctx, key, value); err != nil {
		return false, err
	}
	done := false
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		raw := b.Get([]byte(key))
		if raw == nil {
			return nil
		}
		if len(raw) < 8 {
			return fmt.Errorf("%q: %w", key, errCorrupt)
		}
		if !bytes.Equal(raw[8:], old) {
			return nil
		}
		done = true
		return b.Put([]byte(key), encode(binary.BigEndian.Uint64(raw), value))
	})
	if err != nil {
		return false, wrap(err)
	}
	return done, nil
}

var _ store.Rewriter = (*Store)(nil)

// Delete implements store.Store: it removes key if its version is expect.
func (s *Store) Delete(ctx context.Context, key string, expect uint64) error {
	if err := ready(ctx, key, nil); err != nil {
		return err
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		cur, err := version(b, key)
		if err != nil {
			return err
		}
		if cur == 0 {
			return store.ErrNotFound
		}
		if cur != expect {
			return store.ErrConflict
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return wrap(err)
	}
	s.hub.Notify(key)
	return nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys, wrap(err)
}

// Load implements store.Store, in one read transaction.
func (s *Store) Load(ctx context.Context, prefix string) ([]store.KeyEntry, error) {
	return s.load(ctx, prefix, nil)
}

// LoadChanged implements store.ChangedLoader: the version is read from the
// mapped page, and only the values above held's are copied.
func (s *Store) LoadChanged(ctx context.Context, prefix string, held func(key string) uint64) ([]store.KeyEntry, error) {
	return s.load(ctx, prefix, held)
}

var _ store.ChangedLoader = (*Store)(nil)

// load reads the entries under prefix in one read transaction, those whose
// version is above held's if held is not nil.
func (s *Store) load(ctx context.Context, prefix string, held func(key string) uint64) ([]store.KeyEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []store.KeyEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			if len(raw) < 8 {
				return fmt.Errorf("%q: %w", k, errCorrupt)
			}
			key := string(k)
			if held != nil && binary.BigEndian.Uint64(raw) <= held(key) {
				continue
			}
			e, err := decode(raw)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			out = append(out, store.KeyEntry{Key: key, Entry: e})
		}
		return nil
	})
	return out, wrap(err)
}

func ready(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return store.CheckStored(key, value)
}

func version(b *bbolt.Bucket, key string) (uint64, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return 0, nil
	}
	e, err := decode(raw)
	return e.Version, err
}

var errCorrupt = errors.New("bolt: corrupt entry")

// A stored value is its version, 8 bytes big-endian, then the bytes.
func encode(v uint64, value []byte) []byte {
	out := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(out, v)
	copy(out[8:], value)
	return out
}

func decode(raw []byte) (store.Entry, error) {
	if len(raw) < 8 {
		return store.Entry{}, errCorrupt
	}
	// Values read in a transaction are only valid inside it: copy.
	return store.Entry{Version: binary.BigEndian.Uint64(raw), Value: bytes.Clone(raw[8:])}, nil
}

func wrap(err error) error {
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return store.ErrClosed
	}
	return fmt.Errorf("bolt: %w", err)
}
