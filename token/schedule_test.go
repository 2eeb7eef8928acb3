package token

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// TestFetchesPerDay runs three simulated days and compares the number of
// upstream fetches with the ideal for the lifetime, while a business
// server uses every token it is handed and must never see a dead one.
func TestFetchesPerDay(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		overlap  time.Duration
		run      time.Duration
		stable   bool
	}{
		{"classic 7200s", 7200 * time.Second, 5 * time.Minute, 72 * time.Hour, false},
		{"classic 60s", 60 * time.Second, 10 * time.Second, 2 * time.Hour, false},
		{"stable 7200s", 7200 * time.Second, 5 * time.Minute, 72 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, wxtest.Config{Lifetime: tt.lifetime, Overlap: tt.overlap,
					StableRenewBefore: tt.lifetime / 24}, func(c *Config) { c.Overlap = tt.overlap })
				cred := h.classic("wx1")
				if tt.stable {
					cred = h.stable("wx1")
				}
				h.start(t, cred)

				served := 0
				step := tt.lifetime / 700 // ten uses a minute for 7200 s tokens
				for elapsed := time.Duration(0); elapsed < tt.run; elapsed += step {
					time.Sleep(step)
					if h.use(t, "wx1") {
						served++
					}
				}
				st := h.fake.Stats("wx1")
				// Classic: one fetch per 0.8 lifetime. Stable: a new token
				// each time the old one enters the renewal window, i.e. one
				// per (lifetime - lifetime/24), found by a few normal calls.
				var ideal float64
				issued := st.Issued
				if tt.stable {
					ideal = float64(tt.run) / float64(tt.lifetime-tt.lifetime/24)
					if calls := st.StableCalls; calls > 4*issued {
						t.Errorf("stable calls = %d for %d tokens; want at most 4 per token", calls, issued)
					}
					if st.StableForced != 0 {
						t.Errorf("forced = %d, want 0", st.StableForced)
					}
				} else {
					ideal = float64(tt.run)/(0.8*float64(tt.lifetime)) + 1
					if st.ClassicCalls != issued {
						t.Errorf("classic calls = %d, issued = %d; want equal", st.ClassicCalls, issued)
					}
				}
				if got := float64(issued); got < ideal*0.95 || got > ideal*1.05+1 {
					t.Errorf("issued %d tokens in %s, want %.1f ±5%%", issued, tt.run, ideal)
				}
				if st.DeadUses != 0 {
					t.Errorf("dead token uses = %d, want 0", st.DeadUses)
				}
				if want := int(tt.run / step); served < want-2 {
					t.Errorf("served %d of %d requests", served, want)
				}
				t.Logf("%s over %s: %d tokens (ideal %.1f), %d good uses, %d dead", tt.name, tt.run, issued, ideal, st.GoodUses, st.DeadUses)
			})
		})
	}
}

// TestJitterSpreads checks that a thousand credentials fetched in the same
// second are planned across the refresh window, not at one instant.
func TestJitterSpreads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 1000
		h := newHarness(t, wxtest.Config{Lifetime: 7200 * time.Second}, seeded(1))
		var creds []Credential
		for i := range n {
			creds = append(creds, h.classic(fmt.Sprintf("wx%04d", i)))
		}
		start := time.Now()
		m := h.start(t, creds...)
		synctest.Wait()
		buckets := map[int]int{} // refreshes per minute
		for _, id := range m.IDs() {
			s, _ := m.Snapshot(id)
			if s.Token == "" {
				t.Fatalf("%s has no token after the first round", id)
			}
			at := s.NextRefresh.Sub(start)
			if at < 5400*time.Second || at > 6120*time.Second {
				t.Fatalf("%s planned at %s, outside [5400s, 6120s]", id, at)
			}
			buckets[int(at/time.Minute)]++
		}
		// 1000 refreshes over a 12-minute window: about 83 a minute.
		if len(buckets) < 12 {
			t.Errorf("refreshes fall in %d distinct minutes, want all 12 of the window", len(buckets))
		}
		for minute, c := range buckets {
			if c > 130 {
				t.Errorf("%d refreshes planned in minute %d, want at most 130 (of ~83 on average)", c, minute)
			}
		}
	})
}
