package sealed

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Store is a store.Store that seals every value in the store it wraps.
// Deletes, lists, leases, claims and change notifications pass through:
// keys, versions and claims are not secret.
type Store struct {
	inner store.Store
	ring  *Keyring
	log   *slog.Logger
	// plain: values not sealed yet are read as they are, until a
	// complete pass has sealed them all.
	plain atomic.Bool
	// pending: some values may not be sealed under the primary key.
	pending atomic.Bool

	// The background pass, if started: stopped and awaited by Close.
	stop     context.CancelFunc
	done     chan struct{}
	resealed chan struct{}
	closed   sync.Once
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.ChangedLoader = (*Store)(nil)
)

// New wraps inner without looking at what it holds: every value read must
// be sealed under a key of ring. Open is what a server uses.
func New(inner store.Store, ring *Keyring) *Store {
	return &Store{inner: inner, ring: ring, log: slog.New(slog.DiscardHandler)}
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Entry, error) {
	e, err := s.inner.Get(ctx, key)
	if err != nil {
		return e, err
	}
	e.Value, err = s.open(key, e.Value, true)
	if err != nil {
		return store.Entry{}, err
	}
	return e, nil
}

// Put implements store.Store: value is sealed under the primary key.
func (s *Store) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.Check(key, value); err != nil {
		return 0, err
	}
	return s.inner.Put(ctx, key, s.ring.primary.seal(key, value), expect)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expect uint64) error {
	return s.inner.Delete(ctx, key, expect)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	return s.inner.List(ctx, prefix)
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, prefix string) ([]store.KeyEntry, error) {
	ents, err := s.inner.Load(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return s.openAll(ents)
}

// LoadChanged implements store.ChangedLoader with the wrapped store's, so
// that only the values that changed are opened.
func (s *Store) LoadChanged(ctx context.Context, prefix string, held func(key string) uint64) ([]store.KeyEntry, error) {
	ents, err := store.LoadChanged(ctx, s.inner, prefix, held)
	if err != nil {
		return nil, err
	}
	return s.openAll(ents)
}

// parallelOpen is the number of entries above which openAll splits the
// work over the processors: a start loads every record at once.
const parallelOpen = 1024

// openAll opens every entry in place; one that does not open fails the
// whole, as a damaged record fails a load of the file.
func (s *Store) openAll(ents []store.KeyEntry) ([]store.KeyEntry, error) {
	workers := min(runtime.GOMAXPROCS(0), len(ents)/parallelOpen+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ents); i += workers {
				v, err := s.open(ents[i].Key, ents[i].Value, true)
				if err != nil {
					errs[w] = err
					return
				}
				ents[i].Value = v
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ents, nil
}

// open returns the plain value of raw, stored under key; with inPlace,
// over raw (see Keyring.open).
func (s *Store) open(key string, raw []byte, inPlace bool) ([]byte, error) {
	if isSealed(raw) {
		return s.ring.open(key, raw, inPlace)
	}
	if s.plain.Load() {
		return raw, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrPlain, key)
}

// Lock implements store.Store.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	return s.inner.Lock(ctx, name, ttl)
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	return s.inner.Watch(ctx, prefix)
}

// Claim implements store.Store. A claim holds no value to seal.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return s.inner.Claim(ctx, key, ttl)
}

// Unclaim implements store.Store.
func (s *Store) Unclaim(ctx context.Context, key string) error {
	return s.inner.Unclaim(ctx, key)
}

// Close stops a background pass, waits for it, and closes the wrapped
// store.
func (s *Store) Close() error {
	var err error
	s.closed.Do(func() {
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		err = s.inner.Close()
	})
	return err
}
