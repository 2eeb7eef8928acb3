package token

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// TestDueQueueBoundsGoroutines: when many credentials fall due at once
// and WeChat is slow, they wait in the due queue, not each in a goroutine
// of its own, and every one is fetched in turn.
func TestDueQueueBoundsGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, concurrency = 400, 4
		h := newHarness(t, wxtest.Config{}, func(c *Config) { c.Concurrency = concurrency })
		h.fake.SetFault("", wxtest.Fault{Delay: time.Second})
		creds := make([]Credential, n)
		for i := range creds {
			creds[i] = h.classic(fmt.Sprintf("wx%016x", i))
		}
		before := runtime.NumGoroutine()
		m := h.start(t, creds...)
		synctest.Wait()
		// Each worker runs a refresh, in a goroutine of its own: two
		// each, and the store's watch.
		if got := runtime.NumGoroutine() - before; got > 2*concurrency+4 {
			t.Errorf("%d goroutines while %d credentials wait for %d upstream slots; want at most %d",
				got, n, concurrency, 2*concurrency+4)
		}
		time.Sleep(n / concurrency * 2 * time.Second)
		synctest.Wait()
		for _, c := range creds {
			if _, err := m.Token(c.ID); err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
		}
		if got := h.fake.Stats(creds[0].ID).ClassicCalls; got != 1 {
			t.Errorf("%s: %d calls, want 1", creds[0].ID, got)
		}
	})
}
