package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/storetest"
)

func openBolt(t *testing.T) store.Store {
	t.Helper()
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStoreConformance: the wrapped store keeps the store contract.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return NewStore(openBolt(t), prometheus.NewRegistry())
	})
}

// count is the store operations counted of op with result.
func count(s *Store, op, result string) float64 {
	return counterValue(s.ops.WithLabelValues(op, result))
}

// counterValue is c's value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// series is how many series c collects.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// TestStoreCounts: each operation is counted by its result, and timed.
func TestStoreCounts(t *testing.T) {
	s := NewStore(openBolt(t), prometheus.NewRegistry())
	ctx := t.Context()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of an absent key: %v", err)
	}
	v, err := s.Put(ctx, "k", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", []byte("v"), v+1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Put with a wrong version: %v", err)
	}
	if _, err := s.Get(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Get of an empty key: %v", err)
	}
	if _, err := s.Load(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadChanged(ctx, s, "", func(string) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "lock", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Extend(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Claim(ctx, "c", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	for _, tt := range []struct {
		op, result string
		want       float64
	}{
		{"get", "not_found", 1},
		{"get", "invalid", 1},
		{"get", "closed", 1},
		{"get", "ok", 0},
		{"put", "ok", 1},
		{"put", "conflict", 1},
		{"load", "ok", 2},
		{"lock", "ok", 1},
		{"extend", "ok", 1},
		{"unlock", "ok", 1},
		{"claim", "ok", 1},
		{"claim", "claimed", 1},
	} {
		if got := count(s, tt.op, tt.result); got != tt.want {
			t.Errorf("%s %s: counted %v, want %v", tt.op, tt.result, got, tt.want)
		}
	}
	if n := series(s.duration); n != 7 {
		t.Errorf("durations of %d ops, want 7 (get put load lock extend unlock claim)", n)
	}
}

// TestStoreErrors: a store that fails (Redis stopped) is counted as
// failing.
func TestStoreErrors(t *testing.T) {
	rs := redistest.New(t, redistest.Options{})
	rst, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{rs.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(rst, prometheus.NewRegistry())
	t.Cleanup(func() { s.Close() })
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	if _, err := s.Get(t.Context(), "k"); err == nil {
		t.Fatal("Get with Redis stopped: no error")
	}
	if got := count(s, "get", "error"); got != 1 {
		t.Errorf("get errors counted: %v, want 1", got)
	}
	if got := count(s, "put", "ok"); got != 1 {
		t.Errorf("puts counted: %v, want 1", got)
	}
}
