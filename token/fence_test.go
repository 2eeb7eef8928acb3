package token

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// stallingSource fetches from its inner source and then, once armed,
// holds the token back until released: a refresher that stalls between
// its fetch and its write, past its fetch timeout and its lease.
type stallingSource struct {
	inner   Source
	armed   atomic.Bool
	fetched chan wechat.Token
	release chan struct{}
}

func (s *stallingSource) Fetch(ctx context.Context, req Request) (Fetched, error) {
	tok, err := s.inner.Fetch(ctx, req)
	if s.armed.CompareAndSwap(true, false) {
		s.fetched <- tok.Token
		<-s.release // deaf to ctx: the stall outlives the timeout
	}
	return tok, err
}

// putLog is a store that records the outcome of every Put of one key.
type putLog struct {
	store.Store
	key string

	mu     sync.Mutex
	stored []string // tokens written
	lost   []string // tokens whose write met a conflict
}

func (p *putLog) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	v, err := p.Store.Put(ctx, key, value, expect)
	if key == p.key {
		rec, derr := decodeRecord(value)
		p.mu.Lock()
		switch {
		case derr != nil:
		case err == nil:
			p.stored = append(p.stored, rec.Token)
		case errors.Is(err, store.ErrConflict):
			p.lost = append(p.lost, rec.Token)
		}
		p.mu.Unlock()
	}
	return v, err
}

// openRedis opens a Store on srv for one simulated instance.
func openRedis(t *testing.T, srv *redistest.Server, log *slog.Logger) store.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{srv.Addr()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestClusterFencing: instance A fetches a token under the lease, then
// stalls past the lease before writing it. Instance B takes the lease,
// fetches and stores its own. A's write then fails the compare-and-swap,
// and A adopts B's token: a stale refresher never overwrites a newer
// token, and both instances serve the one WeChat issued last.
func TestClusterFencing(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp("wx1", "secret-wx1")
	client := &wechat.Client{HTTP: fake.Client(), API: "http://wechat"}
	classic := classicSource(client, "wx1", "secret-wx1")
	stall := &stallingSource{inner: classic, fetched: make(chan wechat.Token, 1), release: make(chan struct{})}
	var once sync.Once
	unstall := func() { once.Do(func() { close(stall.release) }) }

	cfg := Config{Logger: log, LockTTL: time.Second, FetchTimeout: 500 * time.Millisecond, MinForceInterval: time.Millisecond}
	start := func(st store.Store, src Source) *Manager {
		c := cfg
		c.Store = st
		m, err := New(c, []Credential{{ID: "wx1", Kind: "mp", Source: src}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	logA := &putLog{Store: openRedis(t, srv, log), key: recordKey("wx1")}
	a := start(logA, stall)
	b := start(openRedis(t, srv, log), classic)
	t.Cleanup(unstall) // runs before the Managers close, or A's Close would wait forever

	// Both serve the first token, fetched by one of them.
	serving := func(m *Manager, want string) string {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			s, err := m.Token("wx1")
			if err == nil && (want == "" || s.Token == want) {
				return s.Token
			}
			if time.Now().After(end) {
				t.Fatalf("no token %q within 10s: %v", want, err)
			}
		}
	}
	first := serving(a, "")
	serving(b, first)

	// A refreshes and stalls with its token, holding a lease that lapses.
	stall.armed.Store(true)
	type result struct {
		s   *Snapshot
		err error
	}
	resA := make(chan result, 1)
	go func() {
		s, err := a.Refresh(t.Context(), "wx1")
		resA <- result{s, err}
	}()
	stale := <-stall.fetched

	// B's report waits out A's lease, then fetches and stores.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sb, err := b.Refresh(ctx, "wx1")
	if err != nil {
		t.Fatalf("B's refresh while A stalls: %v", err)
	}
	newer := sb.Token
	if newer == stale.Value || newer == first {
		t.Fatalf("B got %q; want a token newer than A's %q and the first %q", newer, stale.Value, first)
	}

	unstall()
	ra := <-resA
	if ra.err != nil || ra.s.Token != newer {
		t.Fatalf("A's stalled refresh returned %+v, %v; want B's token %q", ra.s, ra.err, newer)
	}
	if got := serving(a, newer); got != newer {
		t.Fatalf("A serves %q, want %q", got, newer)
	}
	if s, _ := b.Token("wx1"); s.Token != newer {
		t.Fatalf("B serves %q, want %q", s.Token, newer)
	}
	logA.mu.Lock()
	stored, lost := logA.stored, logA.lost
	logA.mu.Unlock()
	for _, tok := range stored {
		if tok == stale.Value {
			t.Fatalf("A stored its stale token %q over B's", stale.Value)
		}
	}
	if len(lost) != 1 || lost[0] != stale.Value {
		t.Fatalf("A's conflicting writes = %q, want its stale token refused once", lost)
	}
	rec, _, err := a.load(t.Context(), "wx1")
	if err != nil || rec.Token != newer {
		t.Fatalf("stored token %q (%v), want B's %q", rec.Token, err, newer)
	}
	if calls := fake.Stats("wx1").ClassicCalls; calls != 3 {
		t.Fatalf("fetches = %d, want 3 (first, A's stalled, B's)", calls)
	}
}
