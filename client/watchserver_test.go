package client_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/clienttest"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestWatchRealServer: against the real server's GET /v1/watch, through
// ten refreshes of two-hour tokens in a synctest bubble, every token and
// ticket reaches the client by its event: after the first read nothing
// is fetched, and what the cache answers is accepted by the fake, and is
// the server's current value as soon as the server has it.
func TestWatchRealServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true, Apps: cycleApps,
			Fake: wxtest.Config{Lifetime: 2 * time.Hour, Overlap: 5 * time.Minute, StableRenewBefore: 5 * time.Minute}})
		cnt, c := counted(t, srv, client.WithWatch(), quiet)
		sources := map[string]*client.TokenSource{}
		for _, a := range srv.Apps {
			sources[a.ID] = c.TokenSource(a.ID)
		}
		ticket := c.TicketSource("oa", "jsapi")
		read := func() {
			for id, ts := range sources {
				tok, err := ts.Token(t.Context())
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if code := use(t, srv, tok); code != 0 {
					t.Fatalf("%s: cached token refused: errcode %d", id, code)
				}
			}
			if _, err := ticket.Ticket(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		read()
		time.Sleep(time.Second) // the stream connects
		synctest.Wait()
		issued := map[string]int{}
		for _, a := range srv.Apps {
			issued[a.ID] = srv.Fake.Stats(a.AppID).Issued
		}
		for range 20 * 60 { // 20 hours, a minute at a time
			time.Sleep(time.Minute)
			synctest.Wait()
			read()
			for id, ts := range sources {
				got, _ := ts.Token(t.Context())
				if want := serverToken(t, srv, id); got != want {
					t.Fatalf("%s at %v: cached %s, the server serves %s", id, time.Now(), prefix(got), prefix(want))
				}
			}
		}
		for _, a := range srv.Apps {
			if n := srv.Fake.Stats(a.AppID).Issued - issued[a.ID]; n < 9 {
				t.Errorf("%s: %d tokens issued in 20 hours of 2-hour tokens, want at least 9", a.ID, n)
			}
		}
		for _, path := range []string{"GET /v1/tokens/oa", "GET /v1/tokens/mini", "GET /v1/tokens/shop"} {
			if n := cnt.count(path); n != 1 {
				t.Errorf("%s: %d requests, want only the first read's", path, n)
			}
		}
		// A ticket is served to its very end and the next one fetched
		// just after (WeChat gives no earlier one), so a reader meets one
		// miss per ticket life, which the server answers when it has the
		// next ticket: ten lives in 20 hours.
		if n := cnt.count("GET /v1/tokens/oa/tickets/jsapi"); n > 11 {
			t.Errorf("ticket: %d requests in 20 hours of 2-hour tickets, want at most one a life", n)
		}
		if n := cnt.count("GET /v1/watch"); n != 1 {
			t.Errorf("%d watch streams, want 1", n)
		}
	})
}

// TestWatchCluster: a client watching one instance of a cluster on Redis
// holds each token another instance (or this one) fetches soon after the
// fetch, in real time; it logs how soon. The cluster's instances refresh
// every 8 s or so; the client's readers take tokens from the cache every
// millisecond and use every new one at the fake.
func TestWatchCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 22 s of real time")
	}
	const lifetime = 10 * time.Second
	rs := redistest.New(t, redistest.Options{})
	srv := clienttest.Start(t, clienttest.Options{Apps: cycleApps, Instances: 2, Redis: rs.Addr(),
		Fake: wxtest.Config{Lifetime: lifetime, Overlap: 2 * time.Second, StableRenewBefore: time.Second}})
	cnt, c := countedOf(t, srv, 1, client.WithWatch(), quiet)
	var mu sync.Mutex
	var delays []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(22 * time.Second)
	for _, a := range srv.Apps {
		ts := c.TokenSource(a.ID)
		wg.Go(func() {
			last := ""
			for time.Now().Before(end) {
				tok, err := ts.Token(t.Context())
				if err != nil {
					t.Errorf("%s: %v", a.ID, err)
					return
				}
				if tok != last {
					seen := time.Now()
					if code := use(t, srv, tok); code != 0 {
						t.Errorf("%s: token refused: errcode %d", a.ID, code)
						return
					}
					if info, ok := srv.Fake.TokenInfo(tok); ok && last != "" {
						mu.Lock()
						delays = append(delays, seen.Sub(info.Expires.Add(-lifetime)))
						mu.Unlock()
					}
					last = tok
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, a := range srv.Apps {
		if n := srv.Fake.Stats(a.AppID).DeadUses; n != 0 {
			t.Errorf("%s: %d dead tokens used", a.ID, n)
		}
	}
	if len(delays) == 0 {
		t.Fatal("no token replaced in 22 s of 10 s tokens")
	}
	slices.Sort(delays)
	// The stable token's fetches are the readers' misses in the second
	// between its end and WeChat's renewal (StableRenewBefore), when the
	// server has no valid token to push: each answer then has under a
	// second to live and is not cached.
	t.Logf("%d new tokens held by the watching client after their issue at WeChat: median %v, max %v; fetches: %d classic, %d stable; %d watch streams",
		len(delays), delays[len(delays)/2], delays[len(delays)-1],
		cnt.count("GET /v1/tokens/oa")+cnt.count("GET /v1/tokens/shop"), cnt.count("GET /v1/tokens/mini"), cnt.count("GET /v1/watch"))
}

// serverToken asks the server for id's token, past any client cache.
func serverToken(t *testing.T, srv *clienttest.Server, id string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/tokens/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+clienttest.Key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.AccessToken == "" {
		t.Fatalf("GET %s: %d, %v", id, resp.StatusCode, err)
	}
	return v.AccessToken
}
