package facade

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestIssuedScansAtMostOnceASecond: tokens handed out are found without a
// scan; a burst of unknown tokens costs no more than one scan a second,
// each caller waiting for a scan begun after it asked rather than making
// its own; a token another instance handed out is found by that scan;
// an expired one is dropped.
func TestIssuedScansAtMostOnceASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var scans atomic.Int32
		var peer atomic.Value // the token another instance handed out
		peer.Store("")
		x := newIssued(func(note func(string, issuedToken)) {
			scans.Add(1)
			if tok := peer.Load().(string); tok != "" {
				note(tok, issuedToken{id: "wx2", family: MP, expires: time.Now().Add(time.Hour)})
			}
		})
		x.note("mine", issuedToken{id: "wx1", family: MP, expires: time.Now().Add(time.Minute)})
		if it, ok := x.lookup(t.Context(), "mine"); !ok || it.id != "wx1" || scans.Load() != 0 {
			t.Fatalf("a token handed out: %+v, %v after %d scans; want wx1 with none", it, ok, scans.Load())
		}

		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, ok := x.lookup(t.Context(), "made-up"); ok {
					t.Error("a made-up token was found")
				}
			})
		}
		wg.Wait()
		// The first miss scans at once; those that asked while it ran
		// wait for one more, a second later.
		if got := scans.Load(); got != 2 {
			t.Errorf("%d scans for a burst of 50 unknown tokens, want 2", got)
		}

		peer.Store("theirs")
		begin := time.Now()
		if it, ok := x.lookup(t.Context(), "theirs"); !ok || it.id != "wx2" {
			t.Errorf("a peer's token: %+v, %v; want wx2", it, ok)
		}
		if waited := time.Since(begin); waited > scanEvery {
			t.Errorf("waited %s for the next scan, want at most %s", waited, scanEvery)
		}

		time.Sleep(2 * time.Minute) // "mine" expires
		x.lookup(t.Context(), "made-up")
		if _, ok := x.get("mine"); ok {
			t.Error("an expired token is still known")
		}
	})
}
