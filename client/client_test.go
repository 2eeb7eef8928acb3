package client_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/clienttest"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestMissesShareOneRequest: callers that find the cache empty together
// wait on one request; one of them giving up does not cancel it for the
// others; once it answers, reads are served from memory.
func TestMissesShareOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true})
		cnt, c := counted(t, srv)
		cnt.gate = make(chan struct{})
		ts := c.TokenSource("oa")

		const callers = 50
		got := make([]string, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { got[i], errs[i] = ts.Token(t.Context()) })
		}
		impatient, cancel := context.WithCancel(t.Context())
		var impatientErr error
		wg.Go(func() { _, impatientErr = ts.Token(impatient) })
		synctest.Wait() // every caller is waiting
		if n := cnt.count("GET /v1/tokens/oa"); n != 1 {
			t.Fatalf("%d requests for %d waiting callers, want 1", n, callers+1)
		}
		cancel()
		synctest.Wait()
		close(cnt.gate)
		wg.Wait()
		if !errors.Is(impatientErr, context.Canceled) {
			t.Errorf("cancelled caller: err = %v, want context.Canceled", impatientErr)
		}
		for i := range callers {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("caller %d: %q, %v; want %q like caller 0", i, prefix(got[i]), errs[i], prefix(got[0]))
			}
		}
		if code := use(t, srv, got[0]); code != 0 {
			t.Fatalf("the token handed out: errcode %d at WeChat", code)
		}
		for range 1000 {
			if tok, err := ts.Token(t.Context()); err != nil || tok != got[0] {
				t.Fatalf("cached read: %q, %v", prefix(tok), err)
			}
		}
		if n := cnt.count("GET /v1/tokens/oa"); n != 1 {
			t.Errorf("%d requests after 1000 cached reads, want still 1", n)
		}
		if again := c.TokenSource("oa"); again != ts {
			t.Error("TokenSource(oa) twice gave two sources")
		}
	})
}

// cycleApps are three credentials of both modes; one has a ticket.
var cycleApps = []clienttest.App{
	{ID: "oa", AppID: "wx00000000000000a1", Mode: "classic", Tickets: []string{"jsapi"}},
	{ID: "mini", AppID: "wx00000000000000a2", Mode: "stable"},
	{ID: "shop", AppID: "wx00000000000000a3", Mode: "classic"},
}

// runCycles has clients business servers, each with workers goroutines
// taking tokens from sources of every credential and using them at the
// fake WeChat, with random pauses up to pause, until the fake's clock has
// moved for d. Every token (and ticket) handed out must be accepted.
func runCycles(t *testing.T, srv *clienttest.Server, clients, workers int, pause, d time.Duration) {
	ids := []string{"oa", "mini", "shop"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls, requests := 0, 0
	cnts := make([]*counter, clients)
	end := time.Now().Add(d)
	for ci := range clients {
		cnt, c := countedOf(t, srv, ci%len(srv.URLs))
		cnts[ci] = cnt
		tickets := c.TicketSource("oa", "jsapi")
		for w := range workers {
			rnd := rand.New(rand.NewPCG(uint64(ci), uint64(w)))
			wg.Go(func() {
				n := 0
				for time.Now().Before(end) {
					id := ids[rnd.IntN(len(ids))]
					tok, err := c.TokenSource(id).Token(t.Context())
					if err != nil {
						t.Errorf("%s: %v", id, err)
						return
					}
					if code := use(t, srv, tok); code != 0 {
						info, _ := srv.Fake.TokenInfo(tok)
						t.Errorf("%s: token %s handed out at %v refused by WeChat: errcode %d (%+v)", id, prefix(tok), time.Now(), code, info)
						return
					}
					// Checked against the moment it was asked for: a
					// ticket must be alive when it is handed out, and a
					// loaded machine may pause this goroutine for a second
					// between the handing out and the check.
					asked := time.Now()
					tk, err := tickets.Ticket(t.Context())
					if err != nil {
						t.Errorf("ticket: %v", err)
						return
					}
					if info, ok := srv.Fake.LookupTicket(tk); !ok || !asked.Before(info.Expires) {
						t.Errorf("ticket %s handed out after its life: %+v", prefix(tk), info)
						return
					}
					n++
					time.Sleep(time.Duration(rnd.Int64N(int64(pause))))
				}
				mu.Lock()
				calls += n
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, cnt := range cnts {
		requests += int(cnt.seen.Load())
	}
	for _, a := range srv.Apps {
		st := srv.Fake.Stats(a.AppID)
		if st.DeadUses != 0 {
			t.Errorf("%s: %d dead tokens used", a.ID, st.DeadUses)
		}
		if st.GoodUses == 0 {
			t.Errorf("%s: never used", a.ID)
		}
		t.Logf("%s: issued %d tokens, %d good uses", a.ID, st.Issued, st.GoodUses)
	}
	t.Logf("%d clients × %d workers: %d token+ticket reads, %d requests to wxtoken", clients, workers, calls, requests)
	if calls == 0 || requests*5 > calls {
		t.Errorf("%d requests for %d reads: the cache is not answering", requests, calls)
	}
}

// TestRefreshCycles runs clients through ten token lifetimes of two hours
// in a synctest bubble: every token and ticket a caller gets is accepted
// by the fake, across the server's refreshes.
func TestRefreshCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true, Apps: cycleApps,
			Fake: wxtest.Config{Lifetime: 2 * time.Hour, Overlap: 5 * time.Minute, StableRenewBefore: 5 * time.Minute}})
		runCycles(t, srv, 3, 4, 2*time.Minute, 20*time.Hour)
	})
}

// TestRefreshCyclesHTTP is TestRefreshCycles over real HTTP and real
// time, with tokens of four seconds.
func TestRefreshCyclesHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 14 s of real time")
	}
	srv := clienttest.Start(t, clienttest.Options{Apps: cycleApps,
		Fake: wxtest.Config{Lifetime: 4 * time.Second, Overlap: 2 * time.Second, StableRenewBefore: time.Second}})
	runCycles(t, srv, 3, 4, 30*time.Millisecond, 14*time.Second)
}

// TestRefreshCyclesCluster is TestRefreshCyclesHTTP with three instances
// sharing a real Redis, each business server asking its own instance.
func TestRefreshCyclesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 14 s of real time")
	}
	rs := redistest.New(t, redistest.Options{})
	srv := clienttest.Start(t, clienttest.Options{Apps: cycleApps, Instances: 3, Redis: rs.Addr(),
		Fake: wxtest.Config{Lifetime: 4 * time.Second, Overlap: 2 * time.Second, StableRenewBefore: time.Second}})
	runCycles(t, srv, 3, 4, 30*time.Millisecond, 14*time.Second)
}

// TestInvalidate: after WeChat ends a token early, reports of it made
// together cost one request and all get a token WeChat accepts, which is
// then cached; a report of a token already replaced asks nothing.
func TestInvalidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true})
		cnt, c := counted(t, srv)
		ts := c.TokenSource("oa")
		old, err := ts.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		srv.Fake.Expire(srv.Apps[0].AppID)
		if code := use(t, srv, old); code != 42001 {
			t.Fatalf("ended token: errcode %d, want 42001", code)
		}
		cnt.gate = make(chan struct{})
		const reporters = 20
		got := make([]string, reporters)
		errs := make([]error, reporters)
		var wg sync.WaitGroup
		for i := range reporters {
			wg.Go(func() { got[i], errs[i] = ts.Invalidate(t.Context(), old) })
		}
		synctest.Wait()
		if n := cnt.count("POST /v1/tokens/oa/invalidate"); n != 1 {
			t.Fatalf("%d reports sent for %d reporters, want 1", n, reporters)
		}
		close(cnt.gate)
		wg.Wait()
		for i := range reporters {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("reporter %d: %q, %v", i, prefix(got[i]), errs[i])
			}
		}
		fresh := got[0]
		if fresh == old {
			t.Fatal("report answered the ended token")
		}
		if code := use(t, srv, fresh); code != 0 {
			t.Fatalf("token after the report: errcode %d", code)
		}
		if tok, _ := ts.Token(t.Context()); tok != fresh {
			t.Errorf("Token after the report: %s, want the report's %s", prefix(tok), prefix(fresh))
		}
		if tok, err := ts.Invalidate(t.Context(), old); err != nil || tok != fresh {
			t.Errorf("late report of the replaced token: %s, %v", prefix(tok), err)
		}
		if n := cnt.count("POST /v1/tokens/oa/invalidate"); n != 1 {
			t.Errorf("%d reports sent after a late one, want still 1", n)
		}
	})
}

// TestServerErrors: the server's refusals come back as *client.Error and
// are not cached; a bad constructor argument is refused.
func TestServerErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true})
		c := srv.NewClient(t)
		_, err := c.TokenSource("nope").Token(t.Context())
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != 404 || e.Code != "not_found" {
			t.Fatalf("unknown id: %v, want a 404 not_found *Error", err)
		}
		bad, err := client.New(srv.URL, "wrong-key-0123456789", client.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		if _, err := bad.TokenSource("oa").Token(t.Context()); !errors.As(err, &e) || e.StatusCode != 401 {
			t.Fatalf("wrong key: %v, want 401", err)
		}
	})
	for _, tc := range []struct{ url, key string }{
		{"", "k"}, {"ftp://x", "k"}, {"http://", "k"}, {"http://x?a=b", "k"}, {"http://x", ""}, {"http://x", "a\nb"},
	} {
		if c, err := client.New(tc.url, tc.key); err == nil {
			c.Close()
			t.Errorf("New(%q, %q): no error", tc.url, tc.key)
		}
	}
}

// TestClosedClient: Close stops the background work and forgets what it
// cached (no timer would drop it at its deadline); reads then fail with
// ErrClosed.
func TestClosedClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true})
		c := srv.NewClient(t)
		if _, err := c.TokenSource("oa").Token(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.Close()
		for _, id := range []string{"oa", "mini"} {
			if _, err := c.TokenSource(id).Token(t.Context()); !errors.Is(err, client.ErrClosed) {
				t.Fatalf("%s after Close: %v, want ErrClosed", id, err)
			}
		}
		time.Sleep(3 * time.Hour) // no refresh timer may fire after Close
	})
}
