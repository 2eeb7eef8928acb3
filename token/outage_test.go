package token

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// TestClusterBackoffIsShared: instances sharing a store meet an upstream
// that fails fast (-1, HTTP 502) just as a token is due. Each failure is
// written to the shared record and every peer adopts it; the next attempt
// must be the one the record names, so the cluster as a whole makes one
// call per backoff step, as one instance does.
func TestClusterBackoffIsShared(t *testing.T) {
	faults := map[string]wxtest.Fault{"errcode -1": {ErrCode: -1}, "http 502": {Status: 502}}
	for _, n := range []int{1, 3, 5} {
		for name, fault := range faults {
			t.Run(fmt.Sprintf("%d instances, %s", n, name), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := newHarness(t, wxtest.Config{Lifetime: time.Hour}, seeded(uint64(n)))
					classic, stable := h.classic("wx1"), h.stable("wx2")
					for range n {
						h.start(t, classic, stable)
					}
					synctest.Wait()
					before := map[string]wxtest.Stats{"wx1": h.fake.Stats("wx1"), "wx2": h.fake.Stats("wx2")}
					// The tokens come due 45 to 51 minutes in: fail from
					// before until after that.
					time.Sleep(40 * time.Minute)
					h.fake.SetFault("", fault)
					const outage = 15 * time.Minute
					time.Sleep(outage)
					during := map[string]int{
						"wx1": h.fake.Stats("wx1").ClassicCalls - before["wx1"].ClassicCalls,
						"wx2": h.fake.Stats("wx2").StableCalls - before["wx2"].StableCalls,
					}
					h.fake.ClearFault("")
					// Backoff from 1 s doubling, jittered by at most 20%,
					// capped by a quarter of what is left of the token (at
					// least 2 minutes here) and by max_backoff (5 minutes):
					// steps of 0.8, 1.6, ... 102 s add up to about 205 s in 8
					// steps, then at least 96 s each for the remaining 11
					// minutes: 8 + 7, plus the planned attempt that failed
					// first. One instance and five have the same bound.
					const bound = 16
					t.Logf("upstream calls during the outage: %v", during)
					for id, calls := range during {
						if calls > bound {
							t.Errorf("%s: %d upstream calls during a %s outage with %d instances, want ≤ %d (one per backoff step)",
								id, calls, outage, n, bound)
						}
					}
					time.Sleep(10 * time.Second)
					if _, err := h.m.Token("wx1"); err != nil {
						t.Errorf("after the outage: %v", err)
					}
				})
			})
		}
	}
}

// notCalledSource fails before reaching WeChat, as a source waiting for a
// ticket or for its parent's token does.
type notCalledSource struct{}

func (notCalledSource) Fetch(ctx context.Context, req Request) (Fetched, error) {
	return Fetched{}, fmt.Errorf("no parent token (%w)", ErrNotCalled)
}

// TestAttemptsNotCalledAreNotCounted: the day's count of calls is what
// WeChat saw. Attempts a source gave up on before calling WeChat are
// retried on the backoff but not counted: they would spend the report
// budget and disagree with WeChat's own count.
func TestAttemptsNotCalledAreNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		m := h.start(t, Credential{ID: "child", Kind: "authorizer", Source: notCalledSource{}})
		time.Sleep(10 * time.Minute)
		s, _ := m.Snapshot("child")
		if s.Fetches != 0 {
			t.Fatalf("fetches_today = %d after attempts that never called WeChat, want 0", s.Fetches)
		}
		if s.Cause == nil || s.Cause.Failures < 5 {
			t.Fatalf("cause = %+v: the attempts were not retried", s.Cause)
		}
	})
}

// TestReportsDuringOutageWaitForBackoff: WeChat ended a token early and
// then fails every fetch. Callers keep reporting the dead token, which
// WeChat's check confirms dead each time; the reports must still wait for
// the shared retry time, or every report becomes a call.
func TestReportsDuringOutageWaitForBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{Lifetime: time.Hour}, func(c *Config) { c.MinForceInterval = time.Second })
		a := h.start(t, h.classic("wx1"))
		b := h.start(t, h.classic("wx1"))
		synctest.Wait()
		dead, _ := a.Token("wx1")
		time.Sleep(time.Minute)
		before := h.fake.Stats("wx1").ClassicCalls
		h.fake.Expire("wx1")
		h.fake.SetFault("wx1", wxtest.Fault{Status: 502})
		for i := range 3000 { // 5 minutes of reports, 10 a second
			time.Sleep(100 * time.Millisecond)
			[]*Manager{a, b}[i%2].Report(t.Context(), "wx1", dead.Token)
		}
		// The schedule over 5 minutes: 0.8, 1.6, ... 102 s (about 205 s
		// in 8 steps), then capped steps: 10, plus the first call.
		if calls := h.fake.Stats("wx1").ClassicCalls - before; calls > 11 {
			t.Errorf("%d calls in a 5-minute outage under constant reports, want ≤ 11 (one per backoff step)", calls)
		}
		h.fake.ClearFault("wx1")
		time.Sleep(5 * time.Minute)
		if s, _, err := a.Report(t.Context(), "wx1", dead.Token); err != nil || s.Token == dead.Token {
			t.Fatalf("after the outage a report gets %v, %v; want a new token", s, err)
		}
	})
}
