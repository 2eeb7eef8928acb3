package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/store"
)

// Store is a store.Store that counts the operations of the store it
// wraps, by operation and result, and times them. It changes nothing of
// what the store does or returns.
type Store struct {
	store.Store
	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.ChangedLoader = (*Store)(nil)
)

// NewStore wraps s, and registers its metrics with reg.
func NewStore(s store.Store, reg prometheus.Registerer) *Store {
	w := &Store{
		Store: s,
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_store_operations_total",
			Help: "Store operations by op (get, put, delete, list, load, lock, extend, unlock, watch, claim, unclaim) and result: ok, an expected outcome (not_found, conflict, lock_lost, claimed), or a failure (error, invalid, closed, canceled).",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxtoken_store_operation_duration_seconds",
			Help:    "How long store operations took, by op; a lock's includes waiting for the lease.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"op"}),
	}
	reg.MustRegister(w.ops, w.duration)
	return w
}

// result is the result label of err.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrLockLost):
		return "lock_lost"
	case errors.Is(err, store.ErrInvalid):
		return "invalid"
	case errors.Is(err, store.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// done counts op, started at start, with err's result.
func (w *Store) done(op string, start time.Time, err error) {
	w.ops.WithLabelValues(op, result(err)).Inc()
	w.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// Get implements store.Store.
func (w *Store) Get(ctx context.Context, key string) (store.Entry, error) {
	start := time.Now()
	e, err := w.Store.Get(ctx, key)
	w.done("get", start, err)
	return e, err
}

// Put implements store.Store.
func (w *Store) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	start := time.Now()
	v, err := w.Store.Put(ctx, key, value, expect)
	w.done("put", start, err)
	return v, err
}

// Delete implements store.Store.
func (w *Store) Delete(ctx context.Context, key string, expect uint64) error {
	start := time.Now()
	err := w.Store.Delete(ctx, key, expect)
	w.done("delete", start, err)
	return err
}

// List implements store.Store.
func (w *Store) List(ctx context.Context, prefix string) ([]string, error) {
	start := time.Now()
	keys, err := w.Store.List(ctx, prefix)
	w.done("list", start, err)
	return keys, err
}

// Load implements store.Store.
func (w *Store) Load(ctx context.Context, prefix string) ([]store.KeyEntry, error) {
	start := time.Now()
	ents, err := w.Store.Load(ctx, prefix)
	w.done("load", start, err)
	return ents, err
}

// LoadChanged implements store.ChangedLoader with the wrapped store's own,
// if it has one: wrapping must not make the periodic re-reads dearer.
func (w *Store) LoadChanged(ctx context.Context, prefix string, held func(key string) uint64) ([]store.KeyEntry, error) {
	start := time.Now()
	ents, err := store.LoadChanged(ctx, w.Store, prefix, held)
	w.done("load", start, err)
	return ents, err
}

// Watch implements store.Store. It counts the opening of a watch, not the
// changes it reports.
func (w *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	start := time.Now()
	ch, err := w.Store.Watch(ctx, prefix)
	w.done("watch", start, err)
	return ch, err
}

// Claim implements store.Store. A claim that finds the key claimed
// already is counted as "claimed".
func (w *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := w.Store.Claim(ctx, key, ttl)
	res := result(err)
	if err == nil && !ok {
		res = "claimed"
	}
	w.ops.WithLabelValues("claim", res).Inc()
	w.duration.WithLabelValues("claim").Observe(time.Since(start).Seconds())
	return ok, err
}

// Unclaim implements store.Store.
func (w *Store) Unclaim(ctx context.Context, key string) error {
	start := time.Now()
	err := w.Store.Unclaim(ctx, key)
	w.done("unclaim", start, err)
	return err
}

// Lock implements store.Store; the lease it returns counts its extends
// and unlocks.
func (w *Store) Lock(ctx context.Context, name string, ttl time.Duration) (store.Lease, error) {
	start := time.Now()
	l, err := w.Store.Lock(ctx, name, ttl)
	w.done("lock", start, err)
	if err != nil {
		return l, err
	}
	return &lease{Lease: l, s: w}, nil
}

// lease is a store.Lease that counts its operations.
type lease struct {
	store.Lease
	s *Store
}

func (l *lease) Extend(ctx context.Context, ttl time.Duration) error {
	start := time.Now()
	err := l.Lease.Extend(ctx, ttl)
	l.s.done("extend", start, err)
	return err
}

func (l *lease) Unlock(ctx context.Context) error {
	start := time.Now()
	err := l.Lease.Unlock(ctx)
	l.s.done("unlock", start, err)
	return err
}
