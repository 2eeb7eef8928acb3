package token

import (
	"math/rand/v2"
	"testing"
	"time"
)

func testPlanner() *planner {
	return &planner{at: 0.8, jitter: 0.05, baseBackoff: time.Second, maxBackoff: 5 * time.Minute, rand: rand.New(rand.NewPCG(1, 2))}
}

// TestRefreshAtBeforeWithdrawal: whatever the draw and the remaining life,
// the plan falls inside the fraction window and before the token stops
// being served.
func TestRefreshAtBeforeWithdrawal(t *testing.T) {
	p := testPlanner()
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{60 * time.Second, 7200 * time.Second} {
		expires := issued.Add(life)
		for _, used := range []float64{0, 0.5, 0.8, 0.95, 0.97, 0.98, 0.99, 0.995} {
			now := issued.Add(time.Duration(float64(life) * used))
			for range 1000 {
				at := p.refreshAt(now, issued, expires)
				left := expires.Sub(now)
				withdrawn := expires.Add(-margin(life))
				if at.Before(now.Add(200*time.Millisecond)) || (left > margin(life)+200*time.Millisecond && !at.Before(withdrawn)) {
					t.Fatalf("life %s, %.1f%% used: planned %s before expiry, %s before withdrawal", life, used*100, expires.Sub(at), withdrawn.Sub(at))
				}
				if used == 0 && (at.Sub(now) < time.Duration(0.75*float64(life)) || at.Sub(now) > time.Duration(0.85*float64(life))) {
					t.Fatalf("life %s: fresh token planned at %s, outside [0.75, 0.85]", life, at.Sub(now))
				}
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	p := testPlanner()
	now := time.Now()
	for n := 1; n <= 20; n++ {
		d := p.backoff(n, now, time.Time{})
		want := min(time.Second<<min(n-1, 20), 5*time.Minute)
		if d < want*8/10 || d > want*12/10 {
			t.Fatalf("backoff(%d) without a token = %s, want %s ±20%%", n, d, want)
		}
		// With 40 s left, the cap is a quarter of it.
		if d := p.backoff(n, now, now.Add(40*time.Second)); d > 12*time.Second {
			t.Fatalf("backoff(%d) with 40 s left = %s, want ≤ 10 s +20%%", n, d)
		}
	}
}
