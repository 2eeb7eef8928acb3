package component_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// countedTicket is a ticket source that counts its fetches.
type countedTicket struct{ calls atomic.Int64 }

func (c *countedTicket) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	n := c.calls.Add(1)
	return token.Fetched{Token: wechat.Token{Value: fmt.Sprint("ticket-", n), ExpiresIn: 2 * time.Hour}}, nil
}

// TestAuthorizersMoveToTheirNamespace: a store written before ids had
// namespaces holds an authorizer under its bare appid, and its ticket
// under "{appid}/tickets/jsapi". A start moves both to the platform's
// namespace, keeping the refresh token and the tokens being served, with
// no fetch; the old keys are gone, and the bare appid still names it.
func TestAuthorizersMoveToTheirNamespace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memory.New()
		fake := wxtest.New(wxtest.Config{})
		fake.AddComponent(comp)
		t.Cleanup(fake.Close)
		tickets := &countedTicket{}
		cfg := component.Config{ID: "plat", AppID: comp.AppID, Secret: comp.Secret,
			Tickets: func(id, _ string) []token.Credential {
				return []token.Credential{{ID: id + "/tickets/jsapi", Kind: "ticket", Source: tickets}}
			}}
		ctx, stop := context.WithCancel(t.Context())
		first := startPlatformConfig(t, cfg, wxtest.Config{}, st, fake, nil)
		time.Sleep(time.Second)
		if _, err := fake.Authorize(ctx, comp.AppID, "wxauth01"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		tok, err := first.tokens.Token("plat/wxauth01")
		if err != nil {
			t.Fatal(err)
		}
		tkt, err := first.tokens.Token("plat/wxauth01/tickets/jsapi")
		if err != nil {
			t.Fatal(err)
		}
		first.tokens.Close()
		stop()
		refresh := storedRecord(t, st, "plat/wxauth01").State
		// Rewrite the store as it was before namespaces.
		for _, id := range []string{"plat/wxauth01", "plat/wxauth01/tickets/jsapi"} {
			moveKey(t, st, "token/"+id, "token/"+strings.TrimPrefix(id, "plat/"))
		}

		calls, ticketCalls := fake.Stats("wxauth01").AuthorizerTokenCalls, tickets.calls.Load()
		second := startPlatformConfig(t, cfg, wxtest.Config{}, st, fake, nil)
		got, err := second.tokens.Token("plat/wxauth01")
		if err != nil || got.Token != tok.Token {
			t.Fatalf("moved authorizer serves %v, %v; want its stored token", got, err)
		}
		if got, err := second.tokens.Token("wxauth01/tickets/jsapi"); err != nil || got.Token != tkt.Token || got.ID != "plat/wxauth01/tickets/jsapi" {
			t.Fatalf("moved ticket by its old id serves %+v, %v; want its stored ticket as plat/wxauth01/tickets/jsapi", got, err)
		}
		if got, err := second.tokens.Token("wxauth01"); err != nil || got.ID != "plat/wxauth01" {
			t.Fatalf("bare appid after the move: %+v, %v; want plat/wxauth01", got, err)
		}
		if storedRecord(t, st, "plat/wxauth01").State != refresh {
			t.Fatal("the refresh token did not come across")
		}
		for _, old := range []string{"token/wxauth01", "token/wxauth01/tickets/jsapi"} {
			if _, err := st.Get(t.Context(), old); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s still stored after the move: %v", old, err)
			}
		}
		if n := fake.Stats("wxauth01").AuthorizerTokenCalls - calls; n != 0 {
			t.Errorf("the move cost %d authorizer token fetches, want 0", n)
		}
		if n := tickets.calls.Load() - ticketCalls; n != 0 {
			t.Errorf("the move cost %d ticket fetches, want 0", n)
		}
		second.tokens.Close()

		// A third start finds nothing left to move.
		third := startPlatformConfig(t, cfg, wxtest.Config{}, st, fake, nil)
		if got, err := third.tokens.Token("plat/wxauth01"); err != nil || got.Token != tok.Token {
			t.Fatalf("after the move, a restart serves %v, %v", got, err)
		}
	})
}

// moveKey moves a stored value from one key to another.
func moveKey(t *testing.T, st store.Store, from, to string) {
	t.Helper()
	e, err := st.Get(t.Context(), from)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), to, e.Value, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(t.Context(), from, e.Version); err != nil {
		t.Fatal(err)
	}
}
