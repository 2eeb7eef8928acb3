package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestClusterReportLiveStorm: 300 business servers report, across three
// instances on one Redis, a token WeChat still accepts (their 40001 came
// from something else). WeChat is asked once whether it works, nothing is
// fetched, and every caller is answered the same token with result live.
func TestClusterReportLiveStorm(t *testing.T) {
	const callers = 300
	fake, up := upstream(t, wxtest.Config{})
	rs := redistest.New(t, redistest.Options{})
	nodes := startNodes(t, 3, clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{overlap: 3s, min_force_interval: 1s}"})
	hc := newHTTPClient(t)
	cur := awaitToken(t, hc, nodes[0].addr(), "wx1", 10*time.Millisecond, 15*time.Second, nil).AccessToken
	for _, n := range nodes[1:] {
		awaitToken(t, hc, n.addr(), "wx1", 10*time.Millisecond, 15*time.Second, func(s string) bool { return s == cur })
	}
	time.Sleep(1500 * time.Millisecond) // past min_force_interval: only the check holds a fetch back
	calls, checks := fake.Stats(app1).ClassicCalls, fake.Stats(app1).GoodUses

	answers := make([]tokenReply, callers)
	statuses := make([]int, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			statuses[i], answers[i], _ = reportToken(t.Context(), hc, nodes[i%len(nodes)].addr(), "wx1", cur)
		})
	}
	wg.Wait()
	for i := range callers {
		if statuses[i] != http.StatusOK || answers[i].AccessToken != cur || answers[i].Result != "live" {
			t.Fatalf("report %d of a live token: %d %+v; want 200, the same token, result live", i, statuses[i], answers[i])
		}
	}
	if got := fake.Stats(app1).ClassicCalls - calls; got != 0 {
		t.Errorf("%d reports of a live token over 3 instances made %d fetches, want 0", callers, got)
	}
	if got := fake.Stats(app1).GoodUses - checks; got != 1 {
		t.Errorf("%d reports of a live token over 3 instances made %d checks, want 1", callers, got)
	}
}

// TestWeComRolloverOverHTTP: business servers polling a WeCom token whose
// gettoken answers the same token until it expires see no error through
// several rollovers: the token is served to its expiry, fetched just
// after, and a request in between waits for that fetch.
func TestWeComRolloverOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("polls for 20 s of real time")
	}
	const life = 4 * time.Second
	fake, up := upstream(t, wxtest.Config{Lifetime: life, Overlap: 3 * time.Second, WeComRepeat: true})
	fake.AddCorp(corp1, "corpsecret1")
	rs := redistest.New(t, redistest.Options{})
	nodes := startNodes(t, 2, clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{overlap: 3s}",
		Credentials: `
  - {id: hr, kind: wecom, corpid: ` + corp1 + `, secret: corpsecret1}`})
	hc := newHTTPClient(t)
	awaitToken(t, hc, nodes[0].addr(), "hr", 10*time.Millisecond, 15*time.Second, nil)
	var mu sync.Mutex
	answers := map[int]int{}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			for end := time.Now().Add(5 * life); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				status, _, err := askToken(t.Context(), hc, n.addr(), "hr")
				if err != nil {
					status = 0
				}
				mu.Lock()
				answers[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(answers) != 1 || answers[http.StatusOK] == 0 {
		t.Errorf("answers by status over %d rollovers: %v; want only 200", 5, answers)
	}
	if issued := fake.Stats(corp1).Issued; issued < 5 {
		t.Errorf("%d WeCom tokens issued over five lifetimes, want one a lifetime", issued)
	}
	t.Logf("answers by status: %v; tokens issued: %d", answers, fake.Stats(corp1).Issued)
}
