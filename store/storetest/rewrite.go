package storetest

import (
	"errors"
	"testing"

	"github.com/wxtoken/wxtoken/store"
)

// testRewrite checks store.Rewriter, for stores that implement it: the
// bytes change only while they are the expected ones, the version never,
// so a writer that read the value before still wins its Put.
func testRewrite(t *testing.T, s store.Store) {
	rw, ok := s.(store.Rewriter)
	if !ok {
		t.Skip("the store does not implement store.Rewriter")
	}
	ctx := t.Context()
	if done, err := rw.Rewrite(ctx, "k", nil, []byte("x")); err != nil || done {
		t.Fatalf("Rewrite(absent) = %v, %v; want false, nil", done, err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Rewrite(absent) created the key: Get error = %v", err)
	}
	v1, _ := s.Put(ctx, "k", []byte("one"), 0)
	v2, err := s.Put(ctx, "k", []byte("two"), v1)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := rw.Rewrite(ctx, "k", []byte("one"), []byte("stale")); err != nil || done {
		t.Fatalf("Rewrite(stale bytes) = %v, %v; want false, nil", done, err)
	}
	if done, err := rw.Rewrite(ctx, "k", []byte("two"), []byte("TWO")); err != nil || !done {
		t.Fatalf("Rewrite(current bytes) = %v, %v; want true, nil", done, err)
	}
	e, err := s.Get(ctx, "k")
	if err != nil || string(e.Value) != "TWO" || e.Version != v2 {
		t.Fatalf("after Rewrite Get = %q v%d, %v; want \"TWO\" v%d", e.Value, e.Version, err, v2)
	}
	if _, err := s.Put(ctx, "k", []byte("three"), v2); err != nil {
		t.Fatalf("Put over the version read before the rewrite: %v", err)
	}
	if _, err := rw.Rewrite(ctx, "k", []byte("three"), make([]byte, store.MaxValueLen+store.Envelope+1)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Rewrite(too long) error = %v, want ErrInvalid", err)
	}
	if e, _ := s.Get(ctx, "k"); string(e.Value) != "three" {
		t.Fatalf("a refused Rewrite changed the value to %q", e.Value)
	}
}
