// Package storetest is the conformance suite every store.Store runs, so
// that the embedded store and the shared ones honour one contract.
package storetest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Run runs the suite. newStore returns a fresh, empty store for each
// subtest; the suite closes it. Shared backends also run RunShared.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutConflict", testPutConflict},
		{"ConcurrentCAS", testConcurrentCAS},
		{"Delete", testDelete},
		{"List", testList},
		{"Load", testLoad},
		{"LoadMany", testLoadMany},
		{"LoadChanged", testLoadChanged},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Limits", testLimits},
		{"ValueOwnership", testValueOwnership},
		{"Rewrite", testRewrite},
		{"CancelledContext", testCancelledContext},
		{"LockExclusive", testLockExclusive},
		{"LockExpires", testLockExpires},
		{"LockExtend", testLockExtend},
		{"LocksIndependent", testLocksIndependent},
		{"Fencing", func(t *testing.T, s store.Store) { testFencing(t, s, s) }},
		{"WatchPutDelete", testWatchPutDelete},
		{"WatchPrefix", testWatchPrefix},
		{"WatchCancel", testWatchCancel},
		{"WatchSlowReader", testWatchSlowReader},
		{"WatchClosed", testWatchClosed},
		{"Closed", testClosed},
		{"Claim", testClaim},
		{"ClaimExpires", testClaimExpires},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimApart", testClaimApart},
		{"ClaimLimits", testClaimLimits},
		{"ClaimCancelled", testClaimCancelled},
		{"ClaimClosed", testClaimClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	_, err := s.Get(t.Context(), "nope")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testPutGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1, err := s.Put(ctx, "k", []byte("one"), 0)
	if err != nil || v1 != 1 {
		t.Fatalf("Put(new) = %d, %v; want 1, nil", v1, err)
	}
	v2, err := s.Put(ctx, "k", []byte("two"), v1)
	if err != nil || v2 != 2 {
		t.Fatalf("Put(update) = %d, %v; want 2, nil", v2, err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil || string(e.Value) != "two" || e.Version != 2 {
		t.Fatalf("Get = %q v%d, %v; want \"two\" v2", e.Value, e.Version, err)
	}
	if _, err := s.Put(ctx, "empty", nil, 0); err != nil {
		t.Fatalf("Put(empty value): %v", err)
	}
	if e, err := s.Get(ctx, "empty"); err != nil || len(e.Value) != 0 || e.Version != 1 {
		t.Fatalf("Get(empty) = %q v%d, %v", e.Value, e.Version, err)
	}
}

func testPutConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Put(ctx, "k", []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	for _, expect := range []uint64{0, 2, 99} {
		if _, err := s.Put(ctx, "k", []byte("bad"), expect); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Put(expect %d) error = %v, want ErrConflict", expect, err)
		}
	}
	if _, err := s.Put(ctx, "absent", []byte("x"), 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Put(absent, expect 1) error = %v, want ErrConflict", err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil || string(e.Value) != "one" || e.Version != 1 {
		t.Fatalf("after conflicts Get = %q v%d, %v; want unchanged \"one\" v1", e.Value, e.Version, err)
	}
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a conflicting Put created the key: %v", err)
	}
}

// testConcurrentCAS has many writers increment one counter through
// read-modify-write; compare-and-swap must lose no increment.
func testConcurrentCAS(t *testing.T, s store.Store) {
	const writers, each = 8, 25
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range each {
				if err := increment(ctx, s, "counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(e.Value); got != writers*each {
		t.Fatalf("counter = %d, want %d (lost updates)", got, writers*each)
	}
	if e.Version != writers*each {
		t.Fatalf("version = %d, want %d", e.Version, writers*each)
	}
}

func increment(ctx context.Context, s store.Store, key string) error {
	for {
		var n, ver uint64
		e, err := s.Get(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			n, ver = binary.BigEndian.Uint64(e.Value), e.Version
		}
		_, err = s.Put(ctx, key, binary.BigEndian.AppendUint64(nil, n+1), ver)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Delete(ctx, "k", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete(missing) error = %v, want ErrNotFound", err)
	}
	v, _ := s.Put(ctx, "k", []byte("x"), 0)
	if err := s.Delete(ctx, "k", v+1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete(stale version) error = %v, want ErrConflict", err)
	}
	if err := s.Delete(ctx, "k", v); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if v, err := s.Put(ctx, "k", []byte("again"), 0); err != nil || v != 1 {
		t.Fatalf("Put after Delete = %d, %v; want 1, nil", v, err)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, k := range []string{"tok/b", "tok/a", "tok/c", "tik/a", "to"} {
		if _, err := s.Put(ctx, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx, "tok/")
	if err != nil {
		t.Fatal(err)
	}
	if want := "tok/a tok/b tok/c"; strings.Join(got, " ") != want {
		t.Fatalf("List(tok/) = %v, want %s", got, want)
	}
	if got, _ := s.List(ctx, "none/"); len(got) != 0 {
		t.Fatalf("List(none/) = %v, want empty", got)
	}
	if got, _ := s.List(ctx, ""); len(got) != 5 {
		t.Fatalf("List(\"\") = %v, want 5 keys", got)
	}
}

func testLoad(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, k := range []string{"tok/b", "tok/a", "tok/c", "tik/a", "to"} {
		if _, err := s.Put(ctx, k, []byte("v:"+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "tok/b", []byte("v2:tok/b"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "tok/c", 1); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "tok/")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.KeyEntry{
		{Key: "tok/a", Entry: store.Entry{Value: []byte("v:tok/a"), Version: 1}},
		{Key: "tok/b", Entry: store.Entry{Value: []byte("v2:tok/b"), Version: 2}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Load(tok/) = %v, want %v", got, want)
	}
	copy(got[0].Value, "XXXXXXX")
	if e, _ := s.Get(ctx, "tok/a"); string(e.Value) != "v:tok/a" {
		t.Fatalf("stored value changed with a buffer Load returned: %q", e.Value)
	}
	if got, err := s.Load(ctx, "none/"); err != nil || len(got) != 0 {
		t.Fatalf("Load(none/) = %v, %v; want empty", got, err)
	}
	if got, _ := s.Load(ctx, ""); len(got) != 4 {
		t.Fatalf("Load(\"\") = %v, want 4 entries", got)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(cancelled, "tok/"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load(cancelled) error = %v, want context.Canceled", err)
	}
	s.Close()
	if _, err := s.Load(ctx, "tok/"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Load after Close error = %v, want ErrClosed", err)
	}
}

// testLoadChanged checks store.LoadChanged, the store's own or the
// fallback on Load: only the entries above the held versions, with their
// values, and held asked about each key under the prefix at most once.
func testLoadChanged(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, k := range []string{"tok/a", "tok/b", "tok/c", "tok/d", "tik/a"} {
		if _, err := s.Put(ctx, k, []byte("v:"+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "tok/b", []byte("v2:tok/b"), 1); err != nil {
		t.Fatal(err)
	}
	held := map[string]uint64{"tok/a": 1, "tok/b": 1, "tok/c": 5} // tok/d: not held
	asked := map[string]int{}
	got, err := store.LoadChanged(ctx, s, "tok/", func(key string) uint64 {
		asked[key]++
		return held[key]
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.KeyEntry{
		{Key: "tok/b", Entry: store.Entry{Value: []byte("v2:tok/b"), Version: 2}},
		{Key: "tok/d", Entry: store.Entry{Value: []byte("v:tok/d"), Version: 1}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("LoadChanged(tok/) = %v, want %v", got, want)
	}
	for k, n := range asked {
		if n != 1 || !strings.HasPrefix(k, "tok/") {
			t.Fatalf("held asked about %q %d times, want only keys under tok/, once each", k, n)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.LoadChanged(cancelled, s, "tok/", func(string) uint64 { return 0 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("LoadChanged(cancelled) error = %v, want context.Canceled", err)
	}
}

// testLoadMany loads more keys than a backend reads in one round trip.
func testLoadMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 1234
	for i := range n {
		k := fmt.Sprintf("many/%04d", i)
		if _, err := s.Put(ctx, k, []byte(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Load(ctx, "many/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("Load returned %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if k := fmt.Sprintf("many/%04d", i); e.Key != k || string(e.Value) != k || e.Version != 1 {
			t.Fatalf("Load entry %d = %s %q v%d, want %s %q v1", i, e.Key, e.Value, e.Version, k, k)
		}
	}
}

// testConcurrentPuts has many writers create keys at once: every write
// succeeds, as its own, however the backend groups them.
func testConcurrentPuts(t *testing.T, s store.Store) {
	const writers = 64
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			k := fmt.Sprintf("w/%02d", i)
			if v, err := s.Put(ctx, k, []byte(k), 0); err != nil || v != 1 {
				errs <- fmt.Errorf("Put(%s) = %d, %v; want 1, nil", k, v, err)
			}
			// Half of them also lose a race, which must fail only them.
			if i%2 == 0 {
				if _, err := s.Put(ctx, k, []byte("stale"), 0); !errors.Is(err, store.ErrConflict) {
					errs <- fmt.Errorf("stale Put(%s) error = %v, want ErrConflict", k, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s.Load(ctx, "w/")
	if err != nil || len(got) != writers {
		t.Fatalf("Load after concurrent puts: %d entries, %v; want %d", len(got), err, writers)
	}
	for _, e := range got {
		if string(e.Value) != e.Key {
			t.Errorf("%s = %q, want its key", e.Key, e.Value)
		}
	}
}

func testLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	cases := []struct {
		key   string
		value []byte
	}{
		{"", []byte("x")},
		{strings.Repeat("k", store.MaxKeyLen+1), []byte("x")},
		{"k", make([]byte, store.MaxValueLen+store.Envelope+1)},
	}
	for _, c := range cases {
		if _, err := s.Put(ctx, c.key, c.value, 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Put(key %d bytes, value %d bytes) error = %v, want ErrInvalid", len(c.key), len(c.value), err)
		}
	}
	if _, err := s.Put(ctx, strings.Repeat("k", store.MaxKeyLen), make([]byte, store.MaxValueLen), 0); err != nil {
		t.Errorf("Put at the limits: %v", err)
	}
}

func testValueOwnership(t *testing.T, s store.Store) {
	ctx := t.Context()
	buf := []byte("original")
	if _, err := s.Put(ctx, "k", buf, 0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	e, _ := s.Get(ctx, "k")
	if string(e.Value) != "original" {
		t.Fatalf("stored value changed with the caller's buffer: %q", e.Value)
	}
	copy(e.Value, "YYYYYYYY")
	if e2, _ := s.Get(ctx, "k"); string(e2.Value) != "original" {
		t.Fatalf("stored value changed with a returned buffer: %q", e2.Value)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "k", []byte("x"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a cancelled Put wrote: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get(cancelled) error = %v, want context.Canceled", err)
	}
	if _, err := s.Lock(ctx, "l", time.Minute); !errors.Is(err, context.Canceled) {
		// An implementation may take a free lock before noticing ctx; a
		// held one must not be waited on with a done ctx.
		held, _ := s.Lock(t.Context(), "held", time.Minute)
		defer held.Unlock(t.Context())
		if _, err := s.Lock(ctx, "held", time.Minute); !errors.Is(err, context.Canceled) {
			t.Fatalf("Lock(cancelled, held) error = %v, want context.Canceled", err)
		}
	}
}

// mustNotLock asserts that name stays locked for a short while.
func mustNotLock(t *testing.T, s store.Store, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if l, err := s.Lock(ctx, name, time.Minute); err == nil {
		l.Unlock(t.Context())
		t.Fatalf("Lock(%q) succeeded while another lease holds it", name)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock(%q) error = %v, want context.DeadlineExceeded", name, err)
	}
}

func testLockExclusive(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Lock(ctx, "cred", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	mustNotLock(t, s, "cred")

	got := make(chan error, 1)
	go func() {
		b, err := s.Lock(ctx, "cred", time.Minute)
		if err == nil {
			err = b.Unlock(ctx)
		}
		got <- err
	}()
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiting Lock after Unlock: %v", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
}

func testLockExpires(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Lock(ctx, "cred", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := s.Lock(wait, "cred", time.Minute)
	if err != nil {
		t.Fatalf("Lock after the holder's ttl: %v", err)
	}
	if err := a.Extend(ctx, time.Minute); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("Extend of an expired lease error = %v, want ErrLockLost", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatalf("Unlock of an expired lease: %v", err)
	}
	mustNotLock(t, s, "cred") // a's Unlock must not have released b's lease
	b.Unlock(ctx)
}

func testLockExtend(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.Lock(ctx, "cred", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Extend(ctx, time.Minute); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	time.Sleep(400 * time.Millisecond) // past the original ttl
	mustNotLock(t, s, "cred")
	if err := a.Extend(ctx, time.Minute); err != nil {
		t.Fatalf("Extend of an extended lease: %v", err)
	}
	a.Unlock(ctx)
}

func testLocksIndependent(t *testing.T, s store.Store) {
	ctx := t.Context()
	var leases []store.Lease
	for i := range 10 {
		l, err := s.Lock(ctx, fmt.Sprintf("cred-%d", i), time.Minute)
		if err != nil {
			t.Fatalf("Lock(cred-%d) while others are held: %v", i, err)
		}
		leases = append(leases, l)
	}
	for _, l := range leases {
		l.Unlock(ctx)
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.Put(ctx, "k", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close error = %v, want ErrClosed", err)
	}
	if _, err := s.Put(ctx, "k", []byte("y"), 1); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Put after Close error = %v, want ErrClosed", err)
	}
}
