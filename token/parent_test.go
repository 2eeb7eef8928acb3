package token

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// childSource is a derived source as a ticket is: it uses its parent's
// token at WeChat (getcallbackip stands in for getticket, and answers
// 40001 for a dead token as getticket does) and answers the same value,
// with the full lifetime, until the value expires.
type childSource struct {
	client *wechat.Client

	mu      sync.Mutex
	calls   int
	parents []string // parent tokens handed in
	value   string
	issued  time.Time
}

func (s *childSource) Fetch(ctx context.Context, req Request) (Fetched, error) {
	s.mu.Lock()
	s.calls++
	s.parents = append(s.parents, req.Parent)
	s.mu.Unlock()
	if req.Parent == "" {
		return Fetched{}, fmt.Errorf("no parent token handed in")
	}
	if _, err := s.client.CallbackIP(ctx, req.Parent); err != nil {
		return Fetched{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.value == "" || now.Sub(s.issued) >= 2*time.Hour {
		s.value, s.issued = fmt.Sprintf("ticket-%d", s.calls), now
	}
	return Fetched{Token: wechat.Token{Value: s.value, ExpiresIn: 2 * time.Hour}}, nil
}

func (s *childSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (h *harness) child(id, parent string) (Credential, *childSource) {
	src := &childSource{client: h.client}
	return Credential{ID: id, Kind: "ticket", Parent: parent, Repeating: true, Source: src}, src
}

// TestChildWaitsForParent: a child is not called while its parent has no
// token, and is fetched as soon as the parent has one, not after its own
// backoff.
func TestChildWaitsForParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		parent := h.classic("wx1")
		h.fake.SetFault("wx1", wxtest.Fault{ErrCode: -1, Count: 6}) // about a minute of backoff
		kid, src := h.child("wx1/jsapi", "wx1")
		m := h.start(t, parent, kid)

		time.Sleep(20 * time.Second)
		if _, err := m.Token("wx1"); err == nil {
			t.Fatal("parent has a token while WeChat fails")
		}
		if n := src.count(); n != 0 {
			t.Fatalf("child called %d times while the parent had no token, want 0", n)
		}
		s, _ := m.Snapshot("wx1/jsapi")
		if s.Cause == nil || s.Cause.Class != causeParent {
			t.Fatalf("child's cause = %+v, want class %q", s.Cause, causeParent)
		}

		var got time.Time
		for range 600 {
			synctest.Wait()
			if _, err := m.Token("wx1"); err == nil && got.IsZero() {
				got = time.Now()
			}
			if _, err := m.Token("wx1/jsapi"); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got.IsZero() {
			t.Fatal("parent never got a token")
		}
		if _, err := m.Token("wx1/jsapi"); err != nil {
			t.Fatalf("child has no token: %v", err)
		}
		if d := time.Since(got); d > time.Second {
			t.Errorf("child got its token %s after the parent, want it woken at once", d)
		}
		if n := src.count(); n != 1 {
			t.Errorf("child called %d times, want 1", n)
		}
	})
}

// TestParentRefusedInsideChild: WeChat refuses the parent's token inside
// the child's fetch. The parent is reported and refreshed once, the child
// is retried with the new token, and no dead child value is served.
func TestParentRefusedInsideChild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		parent := h.classic("wx1")
		kid, src := h.child("wx1/jsapi", "wx1")
		kid2, src2 := h.child("wx1/wx_card", "wx1")
		m := h.start(t, parent, kid, kid2)
		synctest.Wait()
		p0, err := m.Token("wx1")
		if err != nil {
			t.Fatal(err)
		}
		c0, err := m.Token("wx1/jsapi")
		if err != nil {
			t.Fatal(err)
		}
		before := h.fake.Stats("wx1").ClassicCalls

		time.Sleep(time.Minute) // past the least interval between forced refreshes
		h.fake.Expire("wx1")    // WeChat ends the parent's token early
		_, err1 := m.Refresh(t.Context(), "wx1/jsapi")
		_, err2 := m.Refresh(t.Context(), "wx1/wx_card")
		t.Logf("refreshes of the children while the parent's token is dead: %v; %v", err1, err2)
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()

		if n := h.fake.Stats("wx1").ClassicCalls - before; n != 1 {
			t.Errorf("parent fetched %d times, want 1 for two children refused together", n)
		}
		p1, err := m.Token("wx1")
		if err != nil || p1.Token == p0.Token {
			t.Fatalf("parent not replaced: %v", err)
		}
		for _, c := range []struct {
			id  string
			src *childSource
		}{{"wx1/jsapi", src}, {"wx1/wx_card", src2}} {
			s, err := m.Token(c.id)
			if err != nil {
				t.Fatalf("%s: %v", c.id, err)
			}
			if s.Cause != nil {
				t.Errorf("%s: cause %+v after the retry", c.id, s.Cause)
			}
			c.src.mu.Lock()
			last := c.src.parents[len(c.src.parents)-1]
			c.src.mu.Unlock()
			if last != p1.Token {
				t.Errorf("%s: last fetch used parent token %q, want the new %q", c.id, last, p1.Token)
			}
		}
		// The ticket value itself did not change: WeChat keeps a ticket
		// for its life whatever the access token.
		if c1, _ := m.Token("wx1/jsapi"); c1.Token != c0.Token {
			t.Errorf("child value %q, want the same %q", c1.Token, c0.Token)
		}
	})
}

// TestRepeatingCountsFromFirstSeen: a repeating source answers the full
// lifetime every time; the value's expiry stays counted from the first
// answer that carried it, and the value is replaced just after it.
func TestRepeatingCountsFromFirstSeen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		kid, src := h.child("wx1/jsapi", "wx1")
		m := h.start(t, h.classic("wx1"), kid)
		synctest.Wait()
		s0, err := m.Token("wx1/jsapi")
		if err != nil {
			t.Fatal(err)
		}
		first := s0.ExpiresAt
		// Past the planned refresh (80±5% of the life: 90 to 102 min),
		// still the same value.
		time.Sleep(110 * time.Minute)
		synctest.Wait()
		s1, err := m.Token("wx1/jsapi")
		if err != nil {
			t.Fatal(err)
		}
		if src.count() < 2 {
			t.Fatalf("child fetched %d times by 110 min, want a planned refresh", src.count())
		}
		if s1.Token != s0.Token || !s1.ExpiresAt.Equal(first) {
			t.Fatalf("after a repeat: %q until %s, want %q until %s", s1.Token, s1.ExpiresAt, s0.Token, first)
		}
		// Never served past its expiry; replaced right after it.
		for time.Now().Before(first.Add(5 * time.Second)) {
			if s, err := m.Token("wx1/jsapi"); err == nil && s.Token == s0.Token && !time.Now().Before(first) {
				t.Fatalf("value served at %s, past its expiry %s", time.Now(), first)
			}
			time.Sleep(250 * time.Millisecond)
			synctest.Wait()
		}
		s2, err := m.Token("wx1/jsapi")
		if err != nil {
			t.Fatal(err)
		}
		if s2.Token == s0.Token {
			t.Fatal("value not replaced after its expiry")
		}
	})
}

// limitedSource answers every fetch with WeCom's hourly limit.
type limitedSource struct{ calls atomic.Int32 }

func (s *limitedSource) Fetch(context.Context, Request) (Fetched, error) {
	s.calls.Add(1)
	return Fetched{}, &RetryAfterError{Err: &wechat.APIError{ErrCode: 45009, ErrMsg: "api freq out of limit"}, After: time.Hour}
}

// TestRetryAfter: a failure that says when to try again is retried then,
// not at the errcode's default (45009 would otherwise wait for midnight),
// and not sooner.
func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		src := &limitedSource{}
		m := h.start(t, Credential{ID: "hr/tickets/jsapi", Kind: "ticket", Source: src})
		synctest.Wait()
		if n := src.calls.Load(); n != 1 {
			t.Fatalf("%d calls at start, want 1", n)
		}
		time.Sleep(59 * time.Minute)
		if n := src.calls.Load(); n != 1 {
			t.Fatalf("%d calls within the hour, want 1", n)
		}
		time.Sleep(3 * time.Minute)
		if n := src.calls.Load(); n != 2 {
			t.Fatalf("%d calls after the hour, want 2", n)
		}
		s, _ := m.Snapshot("hr/tickets/jsapi")
		if s.Cause == nil || s.Cause.ErrCode != 45009 || s.Cause.Failures != 2 {
			t.Fatalf("cause %+v, want 45009 twice", s.Cause)
		}
	})
}

// gatedSource is a source whose fetches wait for gate to close.
type gatedSource struct {
	Source
	gate chan struct{}
}

func (g *gatedSource) Fetch(ctx context.Context, req Request) (Fetched, error) {
	if req.Parent != "" {
		<-g.gate
	}
	return g.Source.Fetch(ctx, req)
}

// TestReadyWaitsForChildOfValidParent: a child that waited for its parent
// makes the instance ready while the parent fails (a cause every instance
// shares), not ready once the parent has a token and the child's own fetch
// is still to come, and ready again when it has its token.
func TestReadyWaitsForChildOfValidParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		parent := h.classic("wx1")
		h.fake.SetFault("wx1", wxtest.Fault{ErrCode: -1, Count: 3})
		kid, src := h.child("wx1/jsapi", "wx1")
		gate := make(chan struct{})
		kid.Source = &gatedSource{Source: src, gate: gate}
		m := h.start(t, parent, kid)

		time.Sleep(time.Second)
		if s, _ := m.Snapshot("wx1/jsapi"); s.Cause == nil || s.Cause.Class != causeParent || !m.Ready() {
			t.Fatalf("while the parent fails: child %+v, ready %v; want cause parent, ready", s.Cause, m.Ready())
		}
		for deadline := time.Now().Add(time.Hour); ; time.Sleep(time.Second) {
			if _, err := m.Token("wx1"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the parent never got a token")
			}
		}
		synctest.Wait() // the child's fetch waits at the gate
		if m.Ready() {
			t.Fatal("ready while the child of a valid parent has not been fetched")
		}
		close(gate)
		synctest.Wait()
		if _, err := m.Token("wx1/jsapi"); err != nil || !m.Ready() {
			t.Fatalf("after the child's fetch: %v, ready %v", err, m.Ready())
		}
	})
}
