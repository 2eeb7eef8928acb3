package bolt

import (
	"fmt"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// TestClaimsSurviveReopen: a claim is in the file, so a restarted process
// still refuses what the previous one accepted.
func TestClaimsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(t.Context(), "push", time.Minute); !ok || err != nil {
		t.Fatalf("Claim = %t, %v", ok, err)
	}
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.Claim(t.Context(), "push", time.Minute); ok || err != nil {
		t.Fatalf("Claim after reopen = %t, %v; want false: the claim is kept", ok, err)
	}
}

// TestClaimPrunes: expired claims are deleted, so the file holds about one
// window's worth however long it runs.
func TestClaimPrunes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 50 {
		if _, err := s.Claim(t.Context(), fmt.Sprintf("old/%d", i), time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	s.lastPrune = time.Time{} // as if pruneEvery had passed
	if _, err := s.Claim(t.Context(), "new", time.Minute); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(claimBucket).Stats().KeyN
		return nil
	})
	if n != 1 {
		t.Fatalf("%d claims stored after pruning, want 1: the new one", n)
	}
}
