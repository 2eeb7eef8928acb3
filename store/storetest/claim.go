package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

func mustClaim(t *testing.T, s store.Store, key string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.Claim(t.Context(), key, ttl)
	if err != nil || got != want {
		t.Fatalf("Claim(%q, %v) = %t, %v; want %t, nil", key, ttl, got, err, want)
	}
}

func testClaim(t *testing.T, s store.Store) {
	mustClaim(t, s, "push/1", time.Minute, true)
	mustClaim(t, s, "push/1", time.Minute, false)
	mustClaim(t, s, "push/2", time.Minute, true)
	if err := s.Unclaim(t.Context(), "push/1"); err != nil {
		t.Fatalf("Unclaim: %v", err)
	}
	mustClaim(t, s, "push/1", time.Minute, true)
	mustClaim(t, s, "push/2", time.Minute, false) // untouched by push/1's Unclaim
	if err := s.Unclaim(t.Context(), "never-claimed"); err != nil {
		t.Fatalf("Unclaim of a key never claimed: %v", err)
	}
}

// testClaimExpires: once its ttl has passed, a key may be claimed again.
func testClaimExpires(t *testing.T, s store.Store) {
	const ttl = 50 * time.Millisecond
	mustClaim(t, s, "k", ttl, true)
	time.Sleep(2 * ttl)
	mustClaim(t, s, "k", time.Minute, true)
	mustClaim(t, s, "k", time.Minute, false)
}

// testClaimConcurrent: of many concurrent Claims of one key, exactly one
// wins.
func testClaimConcurrent(t *testing.T, s store.Store) {
	const claimers = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		errs []error
	)
	for range claimers {
		wg.Go(func() {
			ok, err := s.Claim(t.Context(), "contested", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				won++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 || won != 1 {
		t.Fatalf("%d concurrent Claims: %d won, errors %v; want exactly one, none", claimers, won, errs)
	}
}

// testClaimApart: claims and values do not see each other.
func testClaimApart(t *testing.T, s store.Store) {
	ctx := t.Context()
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, "shared-name", time.Minute, true)
	if _, err := s.Get(ctx, "shared-name"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a claimed key: %v, want ErrNotFound", err)
	}
	if keys, err := s.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Fatalf("List after a Claim = %v, %v; want no keys", keys, err)
	}
	if _, err := s.Put(ctx, "shared-name", []byte("v"), 0); err != nil {
		t.Fatalf("Put of a value named like a claim: %v", err)
	}
	// The Put is the first thing the watcher hears: the Claim sent nothing.
	expectKey(t, ch, "shared-name")
	mustClaim(t, s, "shared-name", time.Minute, false)
	if err := s.Unclaim(ctx, "shared-name"); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(ctx, "shared-name"); err != nil || string(e.Value) != "v" {
		t.Fatalf("Get after Unclaim = %q, %v; want the value kept", e.Value, err)
	}
}

func testClaimLimits(t *testing.T, s store.Store) {
	cases := []struct {
		key string
		ttl time.Duration
	}{
		{"", time.Minute},
		{strings.Repeat("k", store.MaxKeyLen+1), time.Minute},
		{"k", 0},
		{"k", time.Microsecond},
		{"k", -time.Second},
	}
	for _, c := range cases {
		if _, err := s.Claim(t.Context(), c.key, c.ttl); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Claim(key %d bytes, ttl %v) error = %v, want ErrInvalid", len(c.key), c.ttl, err)
		}
	}
	mustClaim(t, s, "k", time.Minute, true) // the refused claims recorded nothing
	mustClaim(t, s, strings.Repeat("k", store.MaxKeyLen), time.Millisecond, true)
}

func testClaimCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Claim(ctx, "k", time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim(cancelled) error = %v, want context.Canceled", err)
	}
	mustClaim(t, s, "k", time.Minute, true) // the cancelled one recorded nothing
	if err := s.Unclaim(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unclaim(cancelled) error = %v, want context.Canceled", err)
	}
	mustClaim(t, s, "k", time.Minute, false)
}

func testClaimClosed(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(t.Context(), "k", time.Minute); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Claim after Close error = %v, want ErrClosed", err)
	}
	if err := s.Unclaim(t.Context(), "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Unclaim after Close error = %v, want ErrClosed", err)
	}
}

// testSharedClaim: a claim made through one handle holds for the other.
func testSharedClaim(t *testing.T, a, b store.Store) {
	mustClaim(t, a, "push", time.Minute, true)
	mustClaim(t, b, "push", time.Minute, false)
	if err := b.Unclaim(t.Context(), "push"); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, a, "push", time.Minute, true)
}
