package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Waits between attempts to take a held lease: short at first, since most
// holders finish in well under a second, growing so that many waiters do
// not poll Redis hard. Each wait is jittered to keep waiters apart.
const (
	lockRetryMin = 5 * time.Millisecond
	lockRetryMax = 250 * time.Millisecond
)

// Lock implements store.Locker with SET NX PX and a random value that
// identifies this holder to Extend and Unlock.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("redis: lock %q: ttl %v must be at least 1ms", name, ttl)
	}
	if err := s.ready(ctx, name, nil); err != nil {
		return nil, err
	}
	l := &lease{s: s, name: name, key: s.keys.lease + name, value: rand.Text()}
	wait := lockRetryMin
	for {
		ok, err := s.client.SetNX(ctx, l.key, l.value, ttl).Result()
		if err != nil {
			return nil, s.fail(ctx, "lock", name, err)
		}
		if ok {
			return l, nil
		}
		t := time.NewTimer(s.jitter(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redis: lock %q: %w", name, ctx.Err())
		}
		wait = min(2*wait, lockRetryMax)
	}
}

// lease is a held lock. Its value is known only to its holder.
type lease struct {
	s     *Store
	name  string
	key   string
	value string
}

// Extend implements store.Lease.
func (l *lease) Extend(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis: extend %q: ttl %v must be at least 1ms", l.name, ttl)
	}
	if err := l.s.ready(ctx, l.name, nil); err != nil {
		return err
	}
	r, err := extendScript.Run(ctx, l.s.client, []string{l.key}, l.value, ttl.Milliseconds()).Int64()
	switch {
	case err != nil:
		return l.s.fail(ctx, "extend", l.name, err)
	case r == 0:
		return store.ErrLockLost
	}
	return nil
}

// Unlock implements store.Lease.
func (l *lease) Unlock(ctx context.Context) error {
	if err := l.s.ready(ctx, l.name, nil); err != nil {
		return err
	}
	if err := unlockScript.Run(ctx, l.s.client, []string{l.key}, l.value).Err(); err != nil {
		return l.s.fail(ctx, "unlock", l.name, err)
	}
	return nil
}
