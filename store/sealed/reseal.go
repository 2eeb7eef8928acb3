package sealed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// CanaryKey is the store key of the record that says the store is sealed.
const CanaryKey = "wxtoken/seal"

// ErrNoKey: the store is sealed and no key was given.
var ErrNoKey = errors.New("sealed: the store is sealed and no master key is given")

// canary is the record under CanaryKey, itself sealed.
type canary struct {
	// State is stateMigrating until a pass has sealed every value, then
	// stateSealed.
	State string `json:"state"`
}

const (
	stateMigrating = "migrating"
	stateSealed    = "sealed"
)

// CheckNoKey is the start-up check of a store run without a key: it
// refuses one that holds sealed values (as the canary says), which could
// only be read as garbage.
func CheckNoKey(ctx context.Context, inner store.Store) error {
	e, err := inner.Get(ctx, CanaryKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("sealed: read %q: %w", CanaryKey, err)
	}
	if id, ok := sealedID(e.Value); ok && isSealed(e.Value) {
		return fmt.Errorf("%w (sealed under key %s)", ErrNoKey, idString(id))
	}
	return fmt.Errorf("%w (its record %q is damaged)", ErrNoKey, CanaryKey)
}

// Open wraps inner after checking that ring opens what it holds. A store
// sealed under none of ring's keys is refused with ErrUnknownKey, naming
// the key ids. A plain store (one never opened with a key) is marked as
// being sealed, and its values are readable as they are until Reseal has
// sealed them all. Pending then reports whether a pass is due. log (nil:
// none) receives the passes' progress.
func Open(ctx context.Context, inner store.Store, ring *Keyring, log *slog.Logger) (*Store, error) {
	s := New(inner, ring)
	if log != nil {
		s.log = log
	}
	for range 3 {
		c, id, _, err := s.readCanary(ctx)
		if errors.Is(err, store.ErrNotFound) {
			s.plain.Store(true) // before the mark: it lets other instances read plain values too
			s.pending.Store(true)
			err = s.putCanary(ctx, stateMigrating, 0)
			if errors.Is(err, store.ErrConflict) {
				continue // another instance marked it: read its mark
			}
			if err != nil {
				return nil, err
			}
			s.log.Info("store not sealed yet: sealing every value under the master key, beside serving", "key_id", ring.ID())
			return s, nil
		}
		if err != nil {
			return nil, err
		}
		s.plain.Store(c.State != stateSealed)
		s.pending.Store(c.State != stateSealed || id != ring.primary.id || ring.Rotating())
		return s, nil
	}
	return nil, fmt.Errorf("sealed: %q keeps changing under us", CanaryKey)
}

// readCanary reads the canary, with the id of the key it is sealed under.
func (s *Store) readCanary(ctx context.Context) (canary, [4]byte, uint64, error) {
	var c canary
	e, err := s.inner.Get(ctx, CanaryKey)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("sealed: read %q: %w", CanaryKey, err)
		}
		return c, [4]byte{}, 0, err
	}
	id, _ := sealedID(e.Value)
	if !isSealed(e.Value) {
		return c, id, 0, fmt.Errorf("%w: %q, which says the store is sealed", ErrPlain, CanaryKey)
	}
	plain, err := s.ring.open(CanaryKey, e.Value, true)
	if errors.Is(err, ErrUnknownKey) {
		return c, id, 0, fmt.Errorf("%w: the store is sealed under key %s and the keys given are %v", ErrUnknownKey, idString(id), s.ring.IDs())
	}
	if err != nil {
		return c, id, 0, err
	}
	if err := json.Unmarshal(plain, &c); err != nil || (c.State != stateMigrating && c.State != stateSealed) {
		return c, id, 0, fmt.Errorf("%w: %q holds no state", ErrAuth, CanaryKey)
	}
	return c, id, e.Version, nil
}

// putCanary seals state under the primary key over version ver.
func (s *Store) putCanary(ctx context.Context, state string, ver uint64) error {
	v, _ := json.Marshal(canary{State: state})
	_, err := s.inner.Put(ctx, CanaryKey, s.ring.primary.seal(CanaryKey, v), ver)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		err = fmt.Errorf("sealed: write %q: %w", CanaryKey, err)
	}
	return err
}

// Pending reports whether values may not be sealed under the primary key
// yet: the store was plain, or the keyring holds other keys.
func (s *Store) Pending() bool { return s.pending.Load() }

// Counts are what a pass of Reseal found.
type Counts struct {
	Values   int // looked at
	Resealed int // sealed under the primary key by this pass
	Current  int // sealed under it already (by a writer, or a peer's pass)
}

// maxRewrites bounds the attempts on one value that keeps changing.
const maxRewrites = 10

// resealWorkers is how many values a pass seals at once.
const resealWorkers = 128

// progressEvery is how many values a pass looks at between log lines.
const progressEvery = 10000

// Reseal seals every value that is plain or under another key under the
// primary key, each in place (store.Rewriter) so that versions, and
// writers holding them, are untouched. Passes may run at once, in one
// process or in several sharing the store: each value is rewritten only
// while it is the one read. Once every value is under the primary key the
// canary says so, and plain values are refused from then on. Every value
// is opened, so a pass also finds any that was altered: one that does not
// open is left as it is and reported in the error, after the others are
// done.
func (s *Store) Reseal(ctx context.Context) (Counts, error) {
	var n Counts
	rw, ok := s.inner.(store.Rewriter)
	if !ok {
		return n, fmt.Errorf("sealed: the store cannot rewrite values in place")
	}
	start := time.Now()
	ents, err := s.inner.Load(ctx, "")
	if err != nil {
		return n, fmt.Errorf("sealed: load: %w", err)
	}
	s.log.Info("sealing the store under the primary key", "key_id", s.ring.ID(), "values", len(ents))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex // guards n, bad, failed
		bad    []error
		failed error // a store error, which ends the pass
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	// Workers, so that a backend that commits writes together (bolt) or
	// pays a round trip for each (Redis) is kept busy: one value at a
	// time, a pass over 100,000 values on bolt waited for 100,000 fsyncs.
	for range resealWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ents) || ctx.Err() != nil {
					return
				}
				e := &ents[i]
				if e.Key == CanaryKey {
					continue
				}
				done, err := s.reseal(ctx, rw, e.Key, e.Value)
				e.Value = nil // let the collector have it
				mu.Lock()
				n.Values++
				switch {
				case errors.Is(err, ErrAuth), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrPlain):
					bad = append(bad, err)
				case err != nil:
					if failed == nil {
						failed = err
					}
					cancel()
				case done:
					n.Resealed++
				default:
					n.Current++
				}
				if n.Values%progressEvery == 0 {
					s.log.Info("sealing the store", "done", n.Values, "values", len(ents), "resealed", n.Resealed)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return n, failed
	}
	if err := ctx.Err(); err != nil {
		return n, err
	}
	if len(bad) > 0 {
		s.log.Error("values that do not open were left as they are", "count", len(bad), "first", bad[0].Error())
		return n, fmt.Errorf("sealed: %d values do not open, the first: %w", len(bad), bad[0])
	}
	if err := s.markSealed(ctx); err != nil {
		return n, err
	}
	s.plain.Store(false)
	s.pending.Store(false)
	s.log.Info("store sealed under the primary key: other keys are no longer needed", "key_id", s.ring.ID(),
		"values", n.Values, "resealed", n.Resealed, "duration", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// reseal seals one value, read as raw, under the primary key; done
// reports that this call did.
func (s *Store) reseal(ctx context.Context, rw store.Rewriter, key string, raw []byte) (done bool, err error) {
	for range maxRewrites {
		plain, err := s.open(key, raw, false) // under the primary key too: the pass checks every value; raw is Rewrite's old
		if err != nil {
			return false, err
		}
		if id, _ := sealedID(raw); isSealed(raw) && id == s.ring.primary.id {
			return false, nil
		}
		ok, err := rw.Rewrite(ctx, key, raw, s.ring.primary.seal(key, plain))
		if err != nil || ok {
			return ok, err
		}
		e, err := s.inner.Get(ctx, key) // written meanwhile: look again
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		raw = e.Value
	}
	return false, fmt.Errorf("sealed: %q changed %d times while being sealed", key, maxRewrites)
}

// markSealed records in the canary, under the primary key, that every
// value is sealed.
func (s *Store) markSealed(ctx context.Context) error {
	for range maxRewrites {
		c, id, ver, err := s.readCanary(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil && c.State == stateSealed && id == s.ring.primary.id {
			return nil
		}
		if err = s.putCanary(ctx, stateSealed, ver); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("sealed: %q keeps changing under us", CanaryKey)
}

// ResealInBackground runs Reseal beside serving, if Pending, until a pass
// succeeds: after a failure it tries again every retry. Close stops it.
// Done is closed when a pass has succeeded.
func (s *Store) ResealInBackground(retry time.Duration) {
	s.resealed = make(chan struct{})
	if !s.pending.Load() {
		close(s.resealed)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go func() {
		defer close(s.done)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("sealing the store panicked", "panic", p)
			}
		}()
		for {
			_, err := s.Reseal(ctx)
			if err == nil {
				close(s.resealed)
				return
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Error("sealing the store failed; trying again", "err", err, "retry", retry)
			select {
			case <-time.After(retry):
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Done is closed once ResealInBackground's pass has succeeded (at once if
// none was pending); nil before ResealInBackground.
func (s *Store) Done() <-chan struct{} { return s.resealed }
