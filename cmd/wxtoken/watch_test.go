package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestClusterWatch: a stream open on one instance carries the tokens that
// another instance sharing Redis fetches, as soon as this one hears of
// them, through planned refreshes and a reported one.
func TestClusterWatch(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{Lifetime: 6 * time.Second, Overlap: 3 * time.Second})
	rs := redistest.New(t, redistest.Options{})
	cfg := clusterConfig{Redis: rs.Addr(), Upstream: up, Credentials: classicOnly, Refresh: "{overlap: 3s, min_force_interval: 100ms}"}
	a, b := startNode(t, cfg.yaml()), startNode(t, cfg.yaml())
	hc := newHTTPClient(t)
	wc := &wechat.Client{API: up, HTTP: hc}
	first := awaitToken(t, hc, b.addr(), "wx1", 10*time.Millisecond, 15*time.Second, nil).AccessToken

	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+b.addr()+"/v1/watch?ids=wx1", nil)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type event struct {
		token string
		at    time.Time
	}
	events := make(chan event, 64)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var tr tokenReply
				json.Unmarshal([]byte(data), &tr)
				select {
				case events <- event{tr.AccessToken, time.Now()}:
				case <-t.Context().Done():
					return
				}
			}
		}
	}()
	recv := func() event {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("watch stream ended")
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no event")
		}
		return event{}
	}
	if ev := recv(); ev.token != first && ev.token != awaitToken(t, hc, b.addr(), "wx1", 10*time.Millisecond, time.Second, nil).AccessToken {
		t.Fatalf("first event %q, want the current token", ev.token)
	}

	// A report on A: B's stream carries the token A fetched.
	cur := awaitToken(t, hc, a.addr(), "wx1", 10*time.Millisecond, 15*time.Second, nil).AccessToken
	reported := time.Now()
	fresh := forceNew(t, hc, fake, app1, a.addr(), "wx1", cur)
	for {
		ev := recv()
		if ev.token == fresh {
			t.Logf("a token fetched on one instance reached a watcher of the other %v after the report", ev.at.Sub(reported).Round(time.Millisecond))
			break
		}
	}
	// Planned refreshes, made by whichever instance holds the lease:
	// each new token is on the stream, and WeChat takes it.
	seen := map[string]bool{fresh: true}
	for len(seen) < 4 {
		ev := recv()
		if !seen[ev.token] {
			seen[ev.token] = true
			if _, err := wc.CallbackIP(t.Context(), ev.token); err != nil {
				t.Errorf("a token from the stream fails at WeChat: %v", err)
			}
		}
	}
}

// firstEvent opens a watch of ids on addr and returns its first event's
// type and data.
func firstEvent(t *testing.T, addr, ids string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/watch?ids="+ids, nil)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var typ, data string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "" {
		if v, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			typ = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = v
		}
	}
	return typ, data
}
