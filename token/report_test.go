package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/wxtest"
)

// uses is how many token uses (our checks among them) the fake has seen
// for id.
func (h *harness) uses(id string) int {
	st := h.fake.Stats(id)
	return st.GoodUses + st.DeadUses
}

// reportStorm sends n reports of tok for id, spread over the managers,
// all at once, and returns what each was answered.
func reportStorm(t *testing.T, ms []*Manager, id, tok string, n int) ([]*Snapshot, []Result, []error) {
	t.Helper()
	snaps, results, errs := make([]*Snapshot, n), make([]Result, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { snaps[i], results[i], errs[i] = ms[i%len(ms)].Report(t.Context(), id, tok) })
	}
	wg.Wait()
	return snaps, results, errs
}

// TestReportChecked: reports of the current token are checked with WeChat
// first. A storm of reports of a live token costs one check and no fetch;
// of a token WeChat ended early, one check and one fetch, at once even
// inside MinForceInterval, and every caller gets the same working token.
// The same holds for one instance and for three sharing a store.
func TestReportChecked(t *testing.T) {
	for _, n := range []int{1, 3} {
		for _, kind := range []string{"classic", "stable", "wecom"} {
			t.Run(fmt.Sprintf("%s on %d instances", kind, n), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := newHarness(t, wxtest.Config{}, func(c *Config) { c.MinForceInterval = time.Hour })
					var cred Credential
					switch kind {
					case "classic":
						cred = h.classic("wx1")
					case "stable":
						cred = h.stable("wx1")
					default:
						cred = h.wecom("wx1")
					}
					var ms []*Manager
					for range n {
						ms = append(ms, h.start(t, cred))
					}
					synctest.Wait()
					cur, err := ms[0].Token("wx1")
					if err != nil {
						t.Fatal(err)
					}
					fetches, uses := h.fake.Stats("wx1").Issued, h.uses("wx1")

					_, results, errs := reportStorm(t, ms, "wx1", cur.Token, 200)
					for i := range errs {
						if errs[i] != nil || results[i] != Live {
							t.Fatalf("report of a live token: %v, %v; want live", results[i], errs[i])
						}
					}
					if got := h.fake.Stats("wx1").Issued - fetches; got != 0 {
						t.Errorf("a storm of reports of a live token issued %d tokens, want 0", got)
					}
					if got := h.uses("wx1") - uses; got != 1 {
						t.Errorf("a storm of reports of a live token made %d checks, want 1", got)
					}

					time.Sleep(time.Minute)
					h.fake.Expire("wx1") // as a second system fetching with the secret would
					fetches, uses = h.fake.Stats("wx1").Issued, h.uses("wx1")
					snaps, results, errs := reportStorm(t, ms, "wx1", cur.Token, 200)
					for i := range errs {
						if errs[i] != nil {
							t.Fatalf("report of a dead token: %v", errs[i])
						}
						if snaps[i].Token != snaps[0].Token || snaps[i].Token == cur.Token {
							t.Fatalf("callers got different or dead tokens after a report")
						}
						if results[i] != Refreshed && results[i] != Replaced {
							t.Fatalf("report of a dead token answered %v", results[i])
						}
					}
					if got := h.fake.Stats("wx1").Issued - fetches; got != 1 {
						t.Errorf("a storm of reports of a dead token issued %d tokens, want 1", got)
					}
					if got := h.uses("wx1") - uses; got != 1 {
						t.Errorf("a storm of reports of a dead token made %d checks, want 1", got)
					}
					if _, err := h.client.CallbackIP(t.Context(), snaps[0].Token); err != nil {
						t.Errorf("the token answered after the reports does not work: %v", err)
					}
				})
			})
		}
	}
}

// TestReportedStaysMarked: a reported token WeChat refused, whose refresh
// fails, stays marked as reported and is retried on the backoff schedule,
// not at its distant planned refresh; the first fetch that succeeds
// clears the mark.
func TestReportedStaysMarked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		m := h.start(t, h.classic("wx1"))
		synctest.Wait()
		cur, _ := m.Token("wx1")
		h.fake.Expire("wx1")
		h.fake.SetFault("wx1", wxtest.Fault{ErrCode: -1})
		_, _, err := m.Report(t.Context(), "wx1", cur.Token)
		if fe, ok := errors.AsType[*FetchError](err); !ok {
			t.Fatalf("report while WeChat fails: %v, want a FetchError", err)
		} else if fe.RetryAt.IsZero() && errors.Unwrap(fe) == nil {
			t.Fatalf("report while WeChat fails: %v carries no cause", err)
		}
		s, _ := m.Snapshot("wx1")
		if !s.Reported || s.Cause == nil {
			t.Fatalf("after a failed report's refresh: reported=%v cause=%v, want the token marked with its cause", s.Reported, s.Cause)
		}
		if time.Until(s.NextRefresh) > time.Minute {
			t.Fatalf("next attempt in %s: a reported token must be retried on the backoff", time.Until(s.NextRefresh))
		}
		h.fake.ClearFault("wx1")
		time.Sleep(2 * time.Minute)
		s, _ = m.Snapshot("wx1")
		if s.Reported || s.Token == cur.Token {
			t.Fatalf("after WeChat recovered: reported=%v, same token=%v", s.Reported, s.Token == cur.Token)
		}
		if _, err := h.client.CallbackIP(t.Context(), s.Token); err != nil {
			t.Fatalf("token after recovery does not work: %v", err)
		}
	})
}

// haltingSource lets a fetch reach WeChat and then never returns: the
// process dies between WeChat issuing a token and the store write.
type haltingSource struct {
	Source
	halt chan struct{}
}

func (s *haltingSource) Fetch(ctx context.Context, req Request) (tok Fetched, err error) {
	tok, err = s.Source.Fetch(ctx, req)
	<-s.halt
	return tok, err
}

// TestCrashMidFetch: WeChat ended a token early, a caller reported it, and
// the process died after WeChat issued the replacement but before it was
// stored. A restart on the stored state must not serve the old token as
// valid: the unfinished fetch is taken up at once.
func TestCrashMidFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		cred := h.classic("wx1")
		halt := make(chan struct{})
		defer close(halt)
		dying := cred
		dying.Source = &haltingSource{Source: cred.Source, halt: halt}
		m := h.start(t, dying)
		// The first fetch must complete: let it through once.
		synctest.Wait()
		halt <- struct{}{}
		synctest.Wait()
		cur, err := m.Token("wx1")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // past MinForceInterval
		h.fake.Expire("wx1")
		go m.Report(context.Background(), "wx1", cur.Token)
		synctest.Wait() // the replacement is issued; the process "dies" here

		// A new process on what the store holds (the dead one's lease
		// died with it).
		h.store = copyStore(t, h.store, "token/wx1")
		restarted := h.start(t, cred)
		synctest.Wait()
		s, err := restarted.Token("wx1")
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if s.Token == cur.Token {
			t.Fatal("the restart serves the token whose replacement had begun")
		}
		if _, err := h.client.CallbackIP(t.Context(), s.Token); err != nil {
			t.Fatalf("the restart serves a dead token: %v", err)
		}
	})
}

// copyStore returns a new store holding key as src has it.
func copyStore(t *testing.T, src store.Store, key string) store.Store {
	t.Helper()
	ent, err := src.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	dst := newHarness(t, wxtest.Config{}).store
	if _, err := dst.Put(t.Context(), key, ent.Value, 0); err != nil {
		t.Fatal(err)
	}
	return dst
}
