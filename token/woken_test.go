package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/wechat"
)

// ticketSource is a platform's token source: until a ticket is pushed it
// fails without calling WeChat; then it calls, and while hang is set the
// call never answers.
type ticketSource struct {
	mu      sync.Mutex
	ticket  bool
	hang    bool
	calls   int
	entered chan struct{} // closed when a hanging call starts
}

func (s *ticketSource) set(ticket, hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticket, s.hang = ticket, hang
}

func (s *ticketSource) Fetch(ctx context.Context, _ Request) (Fetched, error) {
	s.mu.Lock()
	if !s.ticket {
		s.mu.Unlock()
		return Fetched{}, fmt.Errorf("%w (%w)", wechat.ErrNoTicket, ErrNotCalled)
	}
	s.calls++
	hang := s.hang
	s.mu.Unlock()
	if hang {
		close(s.entered)
		<-ctx.Done()
		return Fetched{}, ctx.Err()
	}
	return Fetched{Token: wechat.Token{Value: fmt.Sprintf("tok%d", s.calls), ExpiresIn: time.Hour}}, nil
}

// dyingStore stops storing anything once dead, as for an instance killed
// at that moment.
type dyingStore struct {
	store.Store
	dead atomic.Bool
}

func (s *dyingStore) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if s.dead.Load() {
		return 0, errors.New("killed")
	}
	return s.Store.Put(ctx, key, value, expect)
}

// TestWokenFetchTakenUpAfterCrash: a credential waiting for a pushed
// ticket is woken by the push and starts its fetch (the intent is
// stored), and the instance dies in the call. The next instance on the
// store takes the fetch up at once: the retry time the failure before the
// push planned (TicketRetry away) is spent, and must not hold it back.
func TestWokenFetchTakenUpAfterCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.New()
		dying := &dyingStore{Store: mem}
		src := &ticketSource{entered: make(chan struct{})}
		cred := Credential{ID: "plat", Kind: "component", Source: src}
		cfg := Config{Store: dying}
		quiet(&cfg)
		m1, err := New(cfg, []Credential{cred})
		if err != nil {
			t.Fatal(err)
		}
		if err := m1.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if s, _ := m1.Snapshot("plat"); s.Cause == nil || s.Cause.Class != wechat.Ticket.String() {
			t.Fatalf("cause before the push = %+v, want the missing ticket", s.Cause)
		}
		src.set(true, true)
		m1.Wake("plat")
		<-src.entered
		dying.dead.Store(true)
		m1.Close()

		src.set(true, false)
		cfg.Store = mem
		m2, err := New(cfg, []Credential{cred})
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		time.Sleep(time.Second)
		if _, err := m2.Token("plat"); err != nil {
			s, _ := m2.Snapshot("plat")
			t.Fatalf("no token a second after taking up a fetch that died: %v (next refresh in %v)", err, time.Until(s.NextRefresh))
		}
	})
}
