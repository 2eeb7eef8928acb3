package token

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// panickingSource panics on every fetch, as a source with a bug would.
type panickingSource struct{}

func (panickingSource) Fetch(context.Context, Request) (Fetched, error) {
	panic("a bug in one source")
}

// TestPanicInOneSource: a source that panics takes down neither the
// process nor the other credentials: they keep refreshing, the broken one
// shows the panic as its cause, is retried on the backoff, and a caller
// waiting on its refresh is answered.
func TestPanicInOneSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{Lifetime: time.Hour})
		m := h.start(t, h.classic("wx1"), Credential{ID: "broken", Kind: "mp", Source: panickingSource{}})
		synctest.Wait()
		if _, err := m.Refresh(t.Context(), "broken"); err == nil {
			t.Fatal("a refresh that panicked reported success")
		}
		time.Sleep(5 * time.Hour)
		if st := h.fake.Stats("wx1"); st.Issued < 5 {
			t.Fatalf("wx1 issued %d tokens in 5 hours beside a panicking source, want one an hour", st.Issued)
		}
		if _, err := m.Token("wx1"); err != nil {
			t.Fatalf("wx1 beside a panicking source: %v", err)
		}
		s, _ := m.Snapshot("broken")
		if s.Cause == nil || s.Cause.Class != causePanic || s.Cause.Failures < 5 {
			t.Fatalf("broken's cause = %+v; want the panic, retried", s.Cause)
		}
		var ue *UnavailableError
		if _, err := m.Token("broken"); !errors.As(err, &ue) {
			t.Fatalf("Token(broken) = %v, want unavailable", err)
		}
	})
}
