package token

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// storm has n callers report stale at once and returns what they got.
func storm(t *testing.T, m *Manager, id, stale string, n int) map[string]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for range n {
		wg.Go(func() {
			s, err := m.Invalidate(t.Context(), id, stale)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				got["error: "+err.Error()]++
				return
			}
			got[s.Token]++
		})
	}
	wg.Wait()
	return got
}

func TestInvalidateStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		m := h.start(t, h.classic("wx1"))
		synctest.Wait()
		first, _ := m.Token("wx1")
		time.Sleep(time.Minute) // past MinForceInterval
		before := h.fake.Stats("wx1").ClassicCalls
		h.fake.Expire("wx1") // reports of a token WeChat accepts cost no fetch

		got := storm(t, m, "wx1", first.Token, 1000)
		if calls := h.fake.Stats("wx1").ClassicCalls - before; calls != 1 {
			t.Fatalf("1000 reports of the current token made %d fetches, want 1", calls)
		}
		cur, _ := m.Token("wx1")
		if len(got) != 1 || got[cur.Token] != 1000 || cur.Token == first.Token {
			t.Fatalf("callers got %v; want all 1000 to get the new token", got)
		}

		time.Sleep(time.Minute)
		got = storm(t, m, "wx1", first.Token, 1000)
		if calls := h.fake.Stats("wx1").ClassicCalls - before; calls != 1 {
			t.Fatalf("1000 reports of a replaced token made %d more fetches, want 0", calls-1)
		}
		if len(got) != 1 || got[cur.Token] != 1000 {
			t.Fatalf("callers got %v; want the current token without a fetch", got)
		}
	})
}

func TestInvalidateMinInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		m := h.start(t, unchecked(h.classic("wx1")))
		synctest.Wait()
		s, _ := m.Token("wx1")
		_, err := m.Invalidate(t.Context(), "wx1", s.Token)
		var le *LimitedError
		if !errors.As(err, &le) || le.RetryAfter <= 0 || le.RetryAfter > 30*time.Second {
			t.Fatalf("Invalidate right after a fetch error = %v; want a LimitedError with RetryAfter ≤ 30s", err)
		}
		if calls := h.fake.Stats("wx1").ClassicCalls; calls != 1 {
			t.Fatalf("fetches = %d, want 1", calls)
		}
		if cur, _ := m.Token("wx1"); cur.Token != s.Token {
			t.Fatal("a refused refresh changed the token")
		}
	})
}

// TestCancelledCallerDoesNotCancelRefresh: one caller giving up must not
// cancel the refresh the others wait on.
func TestCancelledCallerDoesNotCancelRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		m := h.start(t, h.classic("wx1"))
		synctest.Wait()
		old, _ := m.Token("wx1")
		time.Sleep(time.Minute)
		h.fake.Expire("wx1")
		h.fake.SetFault("", wxtest.Fault{Delay: 5 * time.Second, Count: 1})

		impatient, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		done := make(chan *Snapshot)
		go func() {
			s, err := m.Invalidate(t.Context(), "wx1", old.Token)
			if err != nil {
				t.Error(err)
			}
			done <- s
		}()
		if _, err := m.Invalidate(impatient, "wx1", old.Token); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("impatient caller error = %v, want DeadlineExceeded", err)
		}
		s := <-done
		if s.Token == old.Token || h.fake.Stats("wx1").ClassicCalls != 2 {
			t.Fatalf("patient caller got %q after %d fetches; want a new token after 2", s.Token, h.fake.Stats("wx1").ClassicCalls)
		}
	})
}

// TestServesThroughFaults uses every token handed out against the fake
// across many short refresh cycles while the fake fails for a while:
// no caller may see a dead token, and the valid one keeps being served.
// Tokens live 60 s and are refreshed after 39 to 45 s; the faults last
// 6 s and calls time out after 2 s, so the retries fit in what is left.
func TestServesThroughFaults(t *testing.T) {
	faults := []wxtest.Fault{{ErrCode: -1}, {Status: 502}, {Hang: true}, {Delay: 1500 * time.Millisecond}}
	for _, ft := range faults {
		t.Run(fmtFault(ft), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, wxtest.Config{Lifetime: 60 * time.Second, Overlap: 10 * time.Second},
					func(c *Config) {
						c.Overlap, c.RefreshAt = 10*time.Second, 0.7
						c.FetchTimeout, c.LockTTL = 2*time.Second, 5*time.Second
					})
				m := h.start(t, h.classic("wx1"))
				served, refused, cycles := 0, 0, 0
				var faultEnds time.Time
				for range 1200 { // 20 minutes, 25 refresh cycles
					// Every other cycle, fail for 6 s from just before the
					// planned refresh of a healthy token.
					s, _ := m.Snapshot("wx1")
					now := time.Now()
					if faultEnds.IsZero() && s.Token != "" && s.Cause == nil && time.Until(s.NextRefresh) <= time.Second {
						if cycles++; cycles%2 == 0 {
							h.fake.SetFault("", ft)
							faultEnds = now.Add(6 * time.Second)
						}
					} else if !faultEnds.IsZero() && !now.Before(faultEnds) {
						h.fake.ClearFault("")
						faultEnds = time.Time{}
					}
					time.Sleep(time.Second)
					if h.use(t, "wx1") {
						served++
					} else {
						refused++
					}
				}
				// A slow answer is not a failure; the others must have failed
				// fetches for the test to mean anything.
				if failed := h.fake.Stats("wx1").ClassicCalls - h.fake.Stats("wx1").Issued; ft.Delay == 0 && failed < 10 {
					t.Fatalf("only %d fetches met a fault; the test did not exercise failures", failed)
				}
				st := h.fake.Stats("wx1")
				if st.DeadUses != 0 {
					t.Errorf("dead token uses = %d, want 0", st.DeadUses)
				}
				if refused > 0 {
					t.Errorf("refused %d of %d requests; the valid token must be served through short faults", refused, served+refused)
				}
			})
		})
	}
}

func fmtFault(f wxtest.Fault) string {
	switch {
	case f.ErrCode != 0:
		return "errcode"
	case f.Status != 0:
		return "http5xx"
	case f.Hang:
		return "hang"
	}
	return "slow"
}

// TestLongOutageNeverServesExpired: when faults outlast the token, callers
// get an error, never an expired token, and service resumes afterwards.
func TestLongOutageNeverServesExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{Lifetime: 60 * time.Second, Overlap: 10 * time.Second},
			func(c *Config) { c.Overlap = 10 * time.Second; c.MaxBackoff = 10 * time.Second })
		m := h.start(t, h.classic("wx1"))
		synctest.Wait()
		h.fake.SetFault("", wxtest.Fault{Status: 503})
		refused := 0
		for range 180 {
			time.Sleep(time.Second)
			if !h.use(t, "wx1") {
				refused++
				var ue *UnavailableError
				if _, err := m.Token("wx1"); !errors.As(err, &ue) || ue.Cause == nil || ue.Cause.Class != "retry" {
					t.Fatalf("Token during the outage error = %v; want UnavailableError with a retry cause", err)
				}
			}
		}
		if refused == 0 {
			t.Fatal("a 3-minute outage of 60 s tokens refused nothing")
		}
		h.fake.ClearFault("")
		time.Sleep(15 * time.Second)
		if !h.use(t, "wx1") {
			t.Fatal("no token 15 s after the outage ended")
		}
		if st := h.fake.Stats("wx1"); st.DeadUses != 0 {
			t.Fatalf("dead uses = %d, want 0", st.DeadUses)
		}
	})
}

// TestConfigErrorNotRetriedInLoop: a refused secret is tried once, marked
// with its errcode, then left alone until ConfigRetry; a changed
// configuration is tried at once.
func TestConfigErrorNotRetriedInLoop(t *testing.T) {
	for _, code := range []int{40013, 40125, 40164, 40243} {
		t.Run(wechatCode(code), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, wxtest.Config{})
				cred := h.classic("wx1")
				h.fake.SetFault("wx1", wxtest.Fault{ErrCode: code})
				m := h.start(t, cred)
				time.Sleep(50 * time.Minute)
				if calls := h.fake.Stats("wx1").ClassicCalls; calls != 1 {
					t.Fatalf("fetches in 50 minutes = %d, want 1", calls)
				}
				s, _ := m.Snapshot("wx1")
				if s.Cause == nil || s.Cause.Class != "config" || s.Cause.ErrCode != code {
					t.Fatalf("cause = %+v, want config %d", s.Cause, code)
				}
				if !m.Ready() {
					t.Error("a credential with a known configuration cause made the instance not ready")
				}
				if _, err := m.Invalidate(t.Context(), "wx1", ""); !errors.As(err, new(*BlockedError)) {
					t.Fatalf("Invalidate of a blocked credential error = %v, want BlockedError", err)
				}
				time.Sleep(20 * time.Minute) // past ConfigRetry (1h ±10%)
				if calls := h.fake.Stats("wx1").ClassicCalls; calls != 2 {
					t.Fatalf("fetches after ConfigRetry = %d, want 2", calls)
				}
				m.Close()

				// The operator fixes the configuration: a restart with a new
				// fingerprint fetches at once despite the stored block.
				h.fake.ClearFault("wx1")
				cred.Fingerprint = "fixed"
				m = h.start(t, cred)
				synctest.Wait()
				if _, err := m.Token("wx1"); err != nil {
					t.Fatalf("after a configuration change: %v", err)
				}
			})
		})
	}
}

func wechatCode(c int) string { return (&wechat.APIError{ErrCode: c}).Error() }

// TestDailyQuota: 45009 stops fetching until midnight Beijing time.
func TestDailyQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble starts at midnight UTC, 08:00 in Beijing.
		h := newHarness(t, wxtest.Config{Lifetime: time.Hour, DailyLimit: 3})
		m := h.start(t, h.classic("wx1"))
		time.Sleep(15 * time.Hour) // 23:00 Beijing
		st := h.fake.Stats("wx1")
		if st.ClassicCalls != 4 || st.Issued != 3 {
			t.Fatalf("calls = %d, issued = %d; want 3 tokens then one 45009 and silence", st.ClassicCalls, st.Issued)
		}
		s, _ := m.Snapshot("wx1")
		if s.Cause == nil || s.Cause.Class != "daily_quota" || s.Cause.ErrCode != 45009 || s.Fetches != 4 {
			t.Fatalf("snapshot = %+v cause %+v; want daily_quota 45009 and 4 fetches today", s, s.Cause)
		}
		time.Sleep(time.Hour + 2*time.Minute) // past midnight Beijing (+ up to 66 s spread)
		if st := h.fake.Stats("wx1"); st.Issued != 4 {
			t.Fatalf("issued after midnight Beijing = %d, want 4", st.Issued)
		}
		if s, _ := m.Snapshot("wx1"); s.Fetches != 1 || s.Cause != nil {
			t.Fatalf("new day: fetches = %d cause %+v; want 1, nil", s.Fetches, s.Cause)
		}
	})
}

// TestStableForceLimits: invalidating a stable token tries the normal call
// first, forces only when that returns the same token, and never forces
// more than WeChat allows.
func TestStableForceLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{}, func(c *Config) { c.MinForceInterval = time.Second })
		m := h.start(t, unchecked(h.stable("wx1")))
		synctest.Wait()
		cur, _ := m.Token("wx1")
		time.Sleep(5 * time.Second)
		s, err := m.Invalidate(t.Context(), "wx1", cur.Token)
		if err != nil || s.Token == cur.Token {
			t.Fatalf("Invalidate = %v, %v; want a new token", s, err)
		}
		if st := h.fake.Stats("wx1"); st.StableCalls != 3 || st.StableForced != 1 {
			t.Fatalf("stable calls = %d, forced = %d; want 3 (first, normal, forced) and 1", st.StableCalls, st.StableForced)
		}
		time.Sleep(5 * time.Second)
		_, err = m.Invalidate(t.Context(), "wx1", s.Token)
		var le *LimitedError
		if !errors.As(err, &le) || le.RetryAfter > 25*time.Second {
			t.Fatalf("second force 5 s later error = %v; want LimitedError (30 s apart)", err)
		}
		if st := h.fake.Stats("wx1"); st.StableForced != 1 {
			t.Fatalf("forced = %d after a refused force, want 1", st.StableForced)
		}
		for range 25 {
			time.Sleep(31 * time.Second)
			cur, _ := m.Token("wx1")
			m.Invalidate(t.Context(), "wx1", cur.Token)
		}
		if st := h.fake.Stats("wx1"); st.StableForced != 20 {
			t.Fatalf("forced = %d after 26 attempts, want WeChat's daily limit of 20", st.StableForced)
		}
	})
}

// TestRestartServesStoredToken: a new Manager on the same store file serves
// the stored token without a fetch.
func TestRestartServesStoredToken(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, wxtest.Config{})
	cred := h.classic("wx1")
	for i := range 3 {
		s, err := bolt.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		h.store = s
		m := h.start(t, cred)
		waitToken(t, m, "wx1")
		if calls := h.fake.Stats("wx1").ClassicCalls; calls != 1 {
			t.Fatalf("start %d: fetches = %d, want 1 in all", i+1, calls)
		}
		m.Close()
		s.Close()
	}
}

func waitToken(t *testing.T, m *Manager, id string) *Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := m.Token(id); err == nil {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: no token within 10 s", id)
	return nil
}

// TestTwoManagersOneStore: two instances sharing a store fetch once per
// cycle between them, and neither hands out a dead token.
func TestTwoManagersOneStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{Lifetime: 60 * time.Second, Overlap: 10 * time.Second},
			func(c *Config) { c.Overlap = 10 * time.Second })
		cred := h.classic("wx1")
		a := h.start(t, cred)
		b := h.start(t, cred)
		for range 600 {
			time.Sleep(time.Second)
			for _, m := range []*Manager{a, b} {
				if s, err := m.Token("wx1"); err == nil {
					if _, err := h.client.CallbackIP(t.Context(), s.Token); err != nil {
						t.Fatalf("dead token served: %v", err)
					}
				}
			}
		}
		// 10 minutes of 48 s cycles: about 13 fetches, not 26.
		if st := h.fake.Stats("wx1"); st.Issued > 14 {
			t.Fatalf("two instances issued %d tokens in 10 minutes, want ≤ 14 (one per cycle)", st.Issued)
		}
	})
}

// TestReadyWaitsForFirstToken: an instance is not ready while a credential
// has neither a token nor a known cause.
func TestReadyWaitsForFirstToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		h.fake.SetFault("", wxtest.Fault{Hang: true})
		m := h.start(t, h.classic("wx1"))
		synctest.Wait()
		if m.Ready() {
			t.Fatal("ready while the first fetch hangs")
		}
		h.fake.ClearFault("")
		time.Sleep(time.Minute)
		if !m.Ready() {
			t.Fatal("not ready after the upstream recovered")
		}
	})
}

// TestForceBudget: callers' reports stop forcing refreshes once the day's
// budget is spent, keeping the quota for planned refreshes; the planned
// refresh goes on.
func TestForceBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{}, func(c *Config) { c.MinForceInterval = time.Second; c.ForceBudget = 4 })
		m := h.start(t, unchecked(h.classic("wx1")))
		synctest.Wait()
		var err error
		for range 10 {
			time.Sleep(2 * time.Second)
			cur, _ := m.Token("wx1")
			if _, err = m.Invalidate(t.Context(), "wx1", cur.Token); err != nil {
				break
			}
		}
		if le, ok := errors.AsType[*LimitedError](err); !ok || !strings.Contains(le.Reason, "budget") {
			t.Fatalf("reports past the budget: %v, want a LimitedError naming the budget", err)
		}
		if calls := h.fake.Stats("wx1").ClassicCalls; calls != 4 {
			t.Fatalf("fetches = %d, want the budget of 4", calls)
		}
		time.Sleep(3 * time.Hour) // the planned refreshes still happen
		if calls := h.fake.Stats("wx1").ClassicCalls; calls < 5 {
			t.Fatalf("fetches after 3 h = %d: the refused reports stopped the planned refresh", calls)
		}
	})
}

// TestRevokeNotUndoneByOlderState: a revocation published while an
// older record is about to be settled is not undone by it.
func TestRevokeNotUndoneByOlderState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		m := h.start(t, h.classic("wx1"))
		synctest.Wait()
		e, _ := m.entry("wx1")
		e.mu.Lock()
		old, oldVer := e.rec.record(), e.ver
		e.mu.Unlock()
		if err := m.Revoke(t.Context(), "wx1"); err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		m.settle(e, old, oldVer, time.Now().Add(time.Hour), nil) // a slower path, late
		e.mu.Unlock()
		if _, err := m.Token("wx1"); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Token after a late older settle = %v, want ErrRevoked", err)
		}
	})
}
