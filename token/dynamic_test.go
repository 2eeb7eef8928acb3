package token

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// fixedSource is an authorizer-like source that never needs to be called
// in these tests.
type fixedSource struct{}

func (fixedSource) Fetch(context.Context, Request) (Fetched, error) {
	return Fetched{}, errors.New("not called in this test")
}

// TestSeedKeepLive: a seed that must not overwrite a live authorization is
// refused on the stored record, even by an instance that has not yet heard
// of that authorization, and the stored state is unchanged.
func TestSeedKeepLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		a := h.start(t)
		b := h.start(t) // shares the store, knows nothing of "auth1"
		cred := Credential{ID: "auth1", Kind: "authorizer", Owner: "plat", Source: fixedSource{}}
		seed := &Seed{Token: wechat.Token{Value: "tok1", ExpiresIn: 7200e9}, State: "refresh-1"}
		if err := a.Add(t.Context(), cred, seed); err != nil {
			t.Fatal(err)
		}
		err := b.Add(t.Context(), cred, &Seed{State: "garbage", KeepLive: true})
		if !errors.Is(err, ErrLive) {
			t.Fatalf("a KeepLive seed over a live authorization: %v, want ErrLive", err)
		}
		rec, _, err := b.load(t.Context(), "auth1")
		if err != nil || rec.State != "refresh-1" {
			t.Fatalf("stored state after the refused seed = %q, %v; want refresh-1", rec.State, err)
		}
		if err := a.Revoke(t.Context(), "auth1"); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(t.Context(), cred, &Seed{State: "refresh-2", KeepLive: true}); err != nil {
			t.Fatalf("a KeepLive seed over a revoked authorization: %v, want it taken", err)
		}
	})
}

// pushedSource is a platform's source: it fetches with the ticket pushed
// to it, and fails with wechat.ErrNoTicket while there is none. Its first
// fetch reads the ticket (none), then waits for gate before it answers.
type pushedSource struct {
	ticket  atomic.Bool
	first   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (p *pushedSource) Fetch(context.Context, Request) (Fetched, error) {
	had := p.ticket.Load()
	if p.first.CompareAndSwap(false, true) {
		close(p.entered)
		<-p.gate
	}
	if !had {
		return Fetched{}, wechat.ErrNoTicket
	}
	return Fetched{Token: wechat.Token{Value: "platform-token", ExpiresIn: 2 * time.Hour}}, nil
}

// TestWakeDuringFlight: a ticket pushed while a fetch that found none is
// under way wakes the credential when that fetch ends. Before, the wake
// was dropped, and the platform had no token until the retry of a
// missing ticket (a minute) though the ticket had arrived.
func TestWakeDuringFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		src := &pushedSource{entered: make(chan struct{}), gate: make(chan struct{})}
		m := h.start(t, Credential{ID: "plat", Kind: "component", Source: src})
		<-src.entered
		src.ticket.Store(true) // the push stores it, then wakes the credential
		m.Wake("plat")
		close(src.gate)
		time.Sleep(time.Second)
		if _, err := m.Token("plat"); err != nil {
			t.Fatalf("a second after a ticket arrived during a fetch: %v; want the token", err)
		}
	})
}
