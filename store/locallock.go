package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// LocalLocker is a Locker for stores that only one process opens, such as
// the embedded file store: leases live in memory and behave exactly like
// shared ones, expiry included, so the refresh code cannot tell the
// difference. The zero value is ready to use.
type LocalLocker struct {
	mu   sync.Mutex
	held map[string]*localHold
}

type localHold struct {
	expires  time.Time
	released chan struct{} // closed when the hold ends, waking waiters
}

var _ Locker = (*LocalLocker)(nil)

// Lock implements Locker.
func (l *LocalLocker) Lock(ctx context.Context, name string, ttl time.Duration) (Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("store: lock %q: ttl must be positive", name)
	}
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = make(map[string]*localHold)
		}
		now := time.Now()
		h := l.held[name]
		if h == nil || !now.Before(h.expires) {
			if h != nil {
				close(h.released) // expired: its holder lost it
			}
			h = &localHold{expires: now.Add(ttl), released: make(chan struct{})}
			l.held[name] = h
			l.mu.Unlock()
			return &localLease{l: l, name: name, h: h}, nil
		}
		wait, left := h.released, h.expires.Sub(now)
		l.mu.Unlock()

		t := time.NewTimer(left)
		select {
		case <-wait:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: lock %q: %w", name, ctx.Err())
		}
		t.Stop()
	}
}

type localLease struct {
	l    *LocalLocker
	name string
	h    *localHold
}

func (s *localLease) Extend(ctx context.Context, ttl time.Duration) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	now := time.Now()
	if s.l.held[s.name] != s.h || !now.Before(s.h.expires) {
		return ErrLockLost
	}
	s.h.expires = now.Add(ttl)
	return nil
}

func (s *localLease) Unlock(ctx context.Context) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.l.held[s.name] == s.h {
		delete(s.l.held, s.name)
		close(s.h.released)
	}
	return nil
}
