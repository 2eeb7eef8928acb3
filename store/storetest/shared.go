package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// RunShared runs the part of the contract that only shared backends can
// show: what one handle does, another handle on the same backend (as in
// another process) sees. open returns two fresh handles on one empty
// backend for each subtest; the suite closes them.
func RunShared(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"Values", testSharedValues},
		{"Watch", testSharedWatch},
		{"Lock", testSharedLock},
		{"Fencing", testFencing},
		{"Claim", testSharedClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := open(t)
			t.Cleanup(func() {
				a.Close()
				b.Close()
			})
			tt.fn(t, a, b)
		})
	}
}

func testSharedValues(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	v1, err := a.Put(ctx, "tok/k", []byte("from a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := b.Get(ctx, "tok/k")
	if err != nil || string(e.Value) != "from a" || e.Version != v1 {
		t.Fatalf("b.Get = %q v%d, %v; want a's value v%d", e.Value, e.Version, err, v1)
	}
	if keys, err := b.List(ctx, "tok/"); err != nil || len(keys) != 1 || keys[0] != "tok/k" {
		t.Fatalf("b.List = %v, %v; want [tok/k]", keys, err)
	}
	v2, err := b.Put(ctx, "tok/k", []byte("from b"), v1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "tok/k", []byte("stale a"), v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a.Put over b's write error = %v, want ErrConflict", err)
	}
	if err := a.Delete(ctx, "tok/k", v2); err != nil {
		t.Fatalf("a.Delete of b's version: %v", err)
	}
	if _, err := b.Get(ctx, "tok/k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b.Get after a.Delete error = %v, want ErrNotFound", err)
	}
}

func testSharedWatch(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	chB, err := b.Watch(ctx, "tok/")
	if err != nil {
		t.Fatalf("b.Watch: %v", err)
	}
	chA, err := a.Watch(ctx, "tok/")
	if err != nil {
		t.Fatalf("a.Watch: %v", err)
	}
	v, err := a.Put(ctx, "tok/x", []byte("x"), 0)
	if err != nil {
		t.Fatal(err)
	}
	expectKey(t, chB, "tok/x")
	expectKey(t, chA, "tok/x")
	if _, err := a.Put(ctx, "other/y", nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "tok/x", v); err != nil {
		t.Fatal(err)
	}
	expectKey(t, chB, "tok/x")
	if _, err := b.Put(ctx, "tok/z", nil, 0); err != nil {
		t.Fatal(err)
	}
	// Writes of different keys by different writers may arrive in either
	// order (on a cluster they come from different nodes).
	got := map[string]bool{nextKey(t, chA): true, nextKey(t, chA): true}
	if !got["tok/x"] || !got["tok/z"] {
		t.Fatalf("a's watch delivered %v, want tok/x (b's delete) and tok/z", got)
	}
}

func testSharedLock(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	la, err := a.Lock(ctx, "cred", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	mustNotLock(t, b, "cred")
	type result struct {
		l   store.Lease
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := b.Lock(ctx, "cred", time.Minute)
		got <- result{l, err}
	}()
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("b.Lock after a.Unlock: %v", r.err)
	}
	mustNotLock(t, a, "cred")
	if err := r.l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// testFencing is the scenario leases alone cannot prevent: a holder stalls
// past its ttl (a GC pause, a slow upstream call), another takes the lease
// and writes, and the stalled one wakes up and writes what it read before.
// The version fence must refuse that write, and the stalled holder must
// learn it lost the lease.
func testFencing(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const key = "tok/cred"
	if _, err := a.Put(ctx, key, []byte("t0"), 0); err != nil {
		t.Fatal(err)
	}

	la, err := a.Lock(ctx, "lock/"+key, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	read, err := a.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	// a stalls here; b waits out a's ttl, takes the lease and writes.
	lb, err := b.Lock(ctx, "lock/"+key, time.Minute)
	if err != nil {
		t.Fatalf("b.Lock after a's ttl: %v", err)
	}
	cur, err := b.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Put(ctx, key, []byte("t1 by b"), cur.Version)
	if err != nil {
		t.Fatalf("b.Put under its lease: %v", err)
	}

	// a wakes up.
	if _, err := a.Put(ctx, key, []byte("t1 by a"), read.Version); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale holder's Put error = %v, want ErrConflict", err)
	}
	if err := la.Extend(ctx, time.Minute); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("stale holder's Extend error = %v, want ErrLockLost", err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatalf("stale holder's Unlock: %v", err)
	}
	if e, err := a.Get(ctx, key); err != nil || string(e.Value) != "t1 by b" || e.Version != vb {
		t.Fatalf("after the stale write Get = %q v%d, %v; want b's value v%d", e.Value, e.Version, err, vb)
	}
	mustNotLock(t, a, "lock/"+key) // a's Unlock left b's lease alone
	if err := lb.Extend(ctx, time.Minute); err != nil {
		t.Fatalf("b.Extend: %v", err)
	}
	lb.Unlock(ctx)
}
