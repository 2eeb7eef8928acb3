package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// waitLong bounds every wait for a notification. Delivery is quick on
// every backend; the bound only keeps a broken store from hanging the
// suite.
const waitLong = 10 * time.Second

// nextKey returns the next key delivered on ch, skipping "" (which any
// store may send at any time), and fails the test if none comes in time
// or the channel closes.
func nextKey(t *testing.T, ch <-chan string) string {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case k, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed, want a key")
			}
			if k != "" {
				return k
			}
		case <-timeout:
			t.Fatalf("no notification within %v", waitLong)
		}
	}
}

// expectKey asserts that the next key delivered on ch is want.
func expectKey(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	if got := nextKey(t, ch); got != want {
		t.Fatalf("watch delivered %q, want %q", got, want)
	}
}

// expectClosed asserts that ch is closed soon, draining it meanwhile.
func expectClosed(t *testing.T, ch <-chan string) {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("watch channel still open %v later", waitLong)
		}
	}
}

func testWatchPutDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	ch, err := s.Watch(ctx, "tok/")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	v, err := s.Put(ctx, "tok/a", []byte("one"), 0)
	if err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "tok/a")
	if v, err = s.Put(ctx, "tok/a", []byte("two"), v); err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "tok/a")
	if err := s.Delete(ctx, "tok/a", v); err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "tok/a")
}

// testWatchPrefix relies on one writer's notifications arriving in order:
// a key written later that does arrive proves the earlier ones were
// filtered, without waiting for something not to happen.
func testWatchPrefix(t *testing.T, s store.Store) {
	ctx := t.Context()
	ch, err := s.Watch(ctx, "tok/")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	for _, k := range []string{"tik/x", "to", "tok"} {
		if _, err := s.Put(ctx, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "tok/b", []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "tok/b")

	// Failed writes change nothing and are not reported.
	if _, err := s.Put(ctx, "tok/b", []byte("stale"), 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Put(stale) error = %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, "tok/b", 7); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete(stale) error = %v, want ErrConflict", err)
	}
	if _, err := s.Put(ctx, "tok/c", []byte("c"), 0); err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "tok/c")
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	expectClosed(t, ch)

	if _, err := s.Watch(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch(cancelled) error = %v, want context.Canceled", err)
	}
	// The store goes on working for others.
	ch, err = s.Watch(t.Context(), "k")
	if err != nil {
		t.Fatalf("Watch after a cancelled one: %v", err)
	}
	if _, err := s.Put(t.Context(), "k", nil, 0); err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "k")
}

// testWatchSlowReader has a reader fall far behind: it must get either
// every key or "", the writers must not wait for it, and once it reads
// again it must see later writes.
func testWatchSlowReader(t *testing.T, s store.Store) {
	const writes = 300
	ctx := t.Context()
	ch, err := s.Watch(ctx, "w/")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	start := time.Now()
	for i := range writes {
		if _, err := s.Put(ctx, fmt.Sprintf("w/%03d", i), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > waitLong {
		t.Fatalf("%d writes took %v with a reader not reading", writes, d)
	}

	keys, reset := map[string]bool{}, false
	for quiet := false; !quiet; {
		select {
		case k, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if k == "" {
				reset = true
			} else {
				keys[k] = true
			}
		case <-time.After(200 * time.Millisecond):
			quiet = true
		}
	}
	if !reset && len(keys) != writes {
		t.Fatalf("slow reader got %d of %d keys and no \"\"", len(keys), writes)
	}

	if _, err := s.Put(ctx, "w/later", nil, 0); err != nil {
		t.Fatal(err)
	}
	expectKey(t, ch, "w/later")
}

// testWatchClosed checks that closing the store ends its watches.
func testWatchClosed(t *testing.T, s store.Store) {
	ch, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectClosed(t, ch)
	if _, err := s.Watch(t.Context(), ""); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Watch after Close error = %v, want ErrClosed", err)
	}
}
