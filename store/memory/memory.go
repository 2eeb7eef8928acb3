// Package memory is a store.Store kept in process memory: nothing survives
// a restart. It is the reference implementation of the contract and serves
// tests that simulate days of refreshes, where a file's fsync per write
// would dominate.
package memory

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Store is an in-memory store.Store. The zero value is not ready; use New.
type Store struct {
	store.LocalLocker
	hub store.Hub

	mu        sync.Mutex
	m         map[string]store.Entry
	claims    map[string]time.Time // key → expiry
	lastPrune time.Time
	closed    bool
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{m: make(map[string]store.Entry), claims: make(map[string]time.Time)}
}

func (s *Store) begin(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckStored(key, value); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Entry, error) {
	if err := s.begin(ctx, key, nil); err != nil {
		return store.Entry{}, err
	}
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return store.Entry{}, store.ErrNotFound
	}
	return store.Entry{Value: bytes.Clone(e.Value), Version: e.Version}, nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := s.begin(ctx, key, value); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if s.m[key].Version != expect {
		return 0, store.ErrConflict
	}
	v := expect + 1
	s.m[key] = store.Entry{Value: bytes.Clone(value), Version: v}
	s.hub.Notify(key) // under s.mu, so watchers see writes in order
	return v, nil
}

// Rewrite implements store.Rewriter.
func (s *Store) Rewrite(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := s.begin(ctx, key, value); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || !bytes.Equal(e.Value, old) {
		return false, nil
	}
	s.m[key] = store.Entry{Value: bytes.Clone(value), Version: e.Version}
	return true, nil
}

var _ store.Rewriter = (*Store)(nil)

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expect uint64) error {
	if err := s.begin(ctx, key, nil); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, ok := s.m[key]
	switch {
	case !ok:
		return store.ErrNotFound
	case e.Version != expect:
		return store.ErrConflict
	}
	delete(s.m, key)
	s.hub.Notify(key)
	return nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.begin(ctx, "list", nil); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, prefix string) ([]store.KeyEntry, error) {
	if err := s.begin(ctx, "load", nil); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []store.KeyEntry
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, store.KeyEntry{Key: k, Entry: store.Entry{Value: bytes.Clone(e.Value), Version: e.Version}})
		}
	}
	slices.SortFunc(out, func(a, b store.KeyEntry) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := store.CheckClaim(key, ttl); err != nil {
		return false, err
	}
	if err := s.begin(ctx, key, nil); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.lastPrune) >= pruneEvery {
		s.lastPrune = now
		for k, until := range s.claims {
			if !now.Before(until) {
				delete(s.claims, k)
			}
		}
	}
	if until, ok := s.claims[key]; ok && now.Before(until) {
		return false, nil
	}
	s.claims[key] = now.Add(ttl)
	return true, nil
}

// pruneEvery is how often Claim drops expired claims.
const pruneEvery = time.Minute

// Unclaim implements store.Store.
func (s *Store) Unclaim(ctx context.Context, key string) error {
	if err := s.begin(ctx, key, nil); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.claims, key)
	return nil
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	return s.hub.Watch(ctx, prefix)
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hub.Close()
	return nil
}
