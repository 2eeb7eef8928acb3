package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestSuiteClusterOneFetchPerCycle runs a WeCom suite on three instances
// sharing a Redis (two in process, one the binary, so that it can be
// killed) with four corps, each installed through a different instance,
// and tokens that live 10 s.
//
// While WeCom pushes a suite_ticket every 2 s to a different instance and
// business servers on every instance use every corp token they are
// served, the suite token and each corp's token are fetched once per
// refresh cycle between the instances, not once per instance, and no
// served token is dead. Then the pushes stop, the binary is killed with
// SIGKILL, and get_corp_token answers -1 for 8 s: each corp's calls stay
// within one backoff schedule between the two survivors, no served token
// is dead, and once WeCom answers each corp is fetched again and served
// by both.
func TestSuiteClusterOneFetchPerCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 30 s of real time")
	}
	const (
		lifetime, overlap   = 10 * time.Second, 4 * time.Second
		maxBackoff, timeout = 3 * time.Second, 2 * time.Second
		load, outage        = 18 * time.Second, 8 * time.Second
		clients             = 24
	)
	corps := []string{"ww00000000000f0c01", "ww00000000000f0c02", "ww00000000000f0c03", "ww00000000000f0c04"}
	sid := suiteFApp.SuiteID
	var ids []string
	for _, c := range corps {
		ids = append(ids, suiteFAccount(suiteFApp, c))
	}
	bin := buildBinary(t)
	// A replaced token works 4 s more, longer than the 2 s its planned
	// refresh leaves it: one the killed instance replaced but did not
	// live to store still works for its life. No daily limit that the
	// outage's retries could reach (45009 would hide their number).
	fake := wxtest.New(wxtest.Config{Lifetime: lifetime, Overlap: overlap, DailyLimit: 1 << 30})
	fake.AddSuite(suiteFApp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rs := redistest.New(t, redistest.Options{})
	// lock_ttl 5 s: a lease the killed instance held lapses within the
	// outage, not after the test.
	cfg := clusterConfig{Redis: rs.Addr(), Upstream: srv.URL, Timeout: timeout, Credentials: suiteFCredential(suiteFApp),
		Refresh: fmt.Sprintf("{overlap: %s, min_force_interval: 1s, max_backoff: %s, lock_ttl: 5s}", overlap, maxBackoff)}
	path := filepath.Join(t.TempDir(), "wxtoken.yaml")
	if err := os.WriteFile(path, []byte(cfg.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient(t)
	wc := &wechat.Client{API: srv.URL, WeCom: srv.URL, HTTP: hc}

	begin := time.Now()
	a, b := startNode(t, cfg.yaml()), startNode(t, cfg.yaml())
	cmd, cAddr := startBinary(t, bin, path)
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	addrs := []string{a.addr(), b.addr(), cAddr}

	suiteFPushTo(fake, suiteFApp, addrs[0])
	if _, err := fake.PushSuiteTicket(t.Context(), sid); err != nil {
		t.Fatalf("ticket push: %v", err)
	}
	suiteTok := awaitToken(t, hc, addrs[0], sid, 10*time.Millisecond, 15*time.Second, nil).AccessToken
	for _, addr := range addrs[1:] {
		awaitToken(t, hc, addr, sid, 10*time.Millisecond, 5*time.Second, func(s string) bool { return s == suiteTok })
	}
	suiteFirst := time.Now()

	// Each create_auth reaches one instance, which stores the permanent
	// code before answering; the others take the corp up from the store.
	for i, corp := range corps {
		to := addrs[i%len(addrs)]
		suiteFPushTo(fake, suiteFApp, to)
		if _, err := fake.CreateAuth(t.Context(), sid, corp); err != nil {
			t.Fatalf("create_auth of %s through %s: %v", corp, to, err)
		}
		tok := awaitToken(t, hc, to, ids[i], 10*time.Millisecond, 10*time.Second, nil).AccessToken
		for _, addr := range addrs {
			if addr != to {
				awaitToken(t, hc, addr, ids[i], 10*time.Millisecond, 5*time.Second, func(s string) bool { return s == tok })
			}
		}
	}
	corpsFirst := time.Now()

	// WeCom pushes a ticket every 2 s (really every 10 minutes), each to
	// the next instance. A push replaces the stored ticket and fetches
	// nothing while the suite token is valid.
	pushCtx, stopPushing := context.WithCancel(t.Context())
	var pushers sync.WaitGroup
	var pushes atomic.Int64
	pushers.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for k := 1; ; k++ {
			select {
			case <-pushCtx.Done():
				return
			case <-tick.C:
			}
			suiteFPushTo(fake, suiteFApp, addrs[k%len(addrs)])
			if _, err := fake.PushSuiteTicket(pushCtx, sid); err != nil && pushCtx.Err() == nil {
				t.Errorf("ticket push %d to %s: %v", k, addrs[k%len(addrs)], err)
			}
			pushes.Add(1)
		}
	})

	// Business servers on every instance for every corp: each caches the
	// token it is served for its expires_in and uses it every 100 ms.
	var uses, gets atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(load)
	for i := range clients {
		addr, id := addrs[i%len(addrs)], ids[i%len(ids)]
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 5 * time.Millisecond) // spread the start
			var tok string
			var until time.Time
			for time.Now().Before(end) {
				if !time.Now().Before(until) {
					status, tr, err := askToken(t.Context(), hc, addr, id)
					if err != nil || status != http.StatusOK {
						t.Errorf("client %d: GET %s from %s: %d, %v", i, id, addr, status, err)
						return
					}
					gets.Add(1)
					tok, until = tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second)
				}
				if _, err := wc.WeComAPIDomainIP(t.Context(), tok); err != nil {
					t.Errorf("client %d: cached %s token from %s failed upstream: %v", i, id, addr, err)
					return
				}
				uses.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	read := time.Now()
	ss := fake.Stats(sid)
	corpStats := make([]wxtest.Stats, len(ids))
	for i, id := range ids {
		corpStats[i] = fake.Stats(id)
	}

	// After each fetch the next is planned at 0.8±0.05 of the lifetime,
	// capped to leave two 1 s safety margins: 7.5 s to 8 s for 10 s
	// tokens. The least number of fetches allows each cycle a second more
	// for timers, the lease and the call, counted from when all
	// instances served the first token; the most counts from before the
	// instances started.
	cycleMin, cycleMax := 7500*time.Millisecond, 8*time.Second
	bounds := func(first time.Time) (least, most int) {
		return 1 + int(read.Sub(first)/(cycleMax+time.Second)), 1 + int(read.Sub(begin)/cycleMin)
	}
	if least, most := bounds(suiteFirst); ss.Issued < least || ss.Issued > most || ss.SuiteTokenCalls != ss.Issued {
		t.Errorf("get_suite_token: %d calls issued %d tokens in %v across 3 instances and %d ticket pushes; want %d to %d, one per refresh cycle",
			ss.SuiteTokenCalls, ss.Issued, read.Sub(begin).Round(time.Second), pushes.Load(), least, most)
	}
	if ss.PermanentCodeCalls != len(corps) {
		t.Errorf("get_permanent_code calls = %d, want %d: one per create_auth, by the instance it reached", ss.PermanentCodeCalls, len(corps))
	}
	least, most := bounds(corpsFirst)
	for i, st := range corpStats {
		if st.Issued < least || st.Issued > most || st.CorpTokenCalls != st.Issued {
			t.Errorf("%s: %d get_corp_token calls issued %d tokens in %v across 3 instances; want %d to %d, one per refresh cycle",
				ids[i], st.CorpTokenCalls, st.Issued, read.Sub(begin).Round(time.Second), least, most)
		}
		if st.DeadUses != 0 {
			t.Errorf("%s: %d dead uses, want 0", ids[i], st.DeadUses)
		}
	}
	t.Logf("%v, 3 instances, %d clients: %d token GETs, %d uses; %d ticket pushes, %d suite tokens; corp tokens %d to %d each (bounds %d..%d)",
		read.Sub(begin).Round(time.Millisecond), clients, gets.Load(), uses.Load(), pushes.Load(), ss.Issued,
		corpStats[0].Issued, corpStats[len(corpStats)-1].Issued, least, most)

	// No more pushes (the ticket lives 30 minutes), and one instance dies.
	stopPushing()
	pushers.Wait()
	cmd.Process.Kill()
	cmd.Wait()
	survivors := addrs[:2]

	// Business servers on the survivors, through the outage: a corp may
	// go unserved once its token expires, but a served token must work.
	useCtx, stopUsing := context.WithCancel(t.Context())
	var served atomic.Int64
	for i := range 8 {
		addr, id := survivors[i%len(survivors)], ids[i%len(ids)]
		wg.Go(func() {
			for useCtx.Err() == nil {
				status, tr, err := askToken(useCtx, hc, addr, id)
				if err == nil && status == http.StatusOK {
					if _, err := wc.WeComAPIDomainIP(useCtx, tr.AccessToken); err != nil && useCtx.Err() == nil {
						t.Errorf("%s served %s a token that failed upstream during or after the outage: %v", addr, id, err)
					}
					served.Add(1)
				}
				pause(useCtx, 50*time.Millisecond)
			}
		})
	}

	before := make([]int, len(ids))
	for i, id := range ids {
		before[i] = fake.Stats(id).CorpTokenCalls
	}
	start := time.Now()
	for _, id := range ids {
		fake.SetFault(id, wxtest.Fault{ErrCode: -1})
	}
	time.Sleep(outage) // the outage itself: calls are counted over it
	during, issued := make([]int, len(ids)), make([]int, len(ids))
	for i, id := range ids {
		st := fake.Stats(id)
		during[i], issued[i] = st.CorpTokenCalls-before[i], st.Issued
	}
	stop := time.Now()
	for _, id := range ids {
		fake.ClearFault(id)
	}
	// One schedule per corp, at the worst expiry its token could have,
	// however many instances share it; and the calls racing the outage's
	// two ends.
	bound := engineBackoff(maxBackoff).worstAttempts(start, stop) + stormSlack
	for i, id := range ids {
		t.Logf("%s: %d get_corp_token calls in %v of -1 across 2 instances (bound %d)", id, during[i], stop.Sub(start).Round(time.Millisecond), bound)
		if during[i] == 0 {
			t.Errorf("%s: no get_corp_token call in %v of -1: the outage met none of its refreshes", id, stop.Sub(start).Round(time.Millisecond))
		}
		if during[i] > bound {
			t.Errorf("%s: %d get_corp_token calls in %v of -1 across 2 instances, want at most %d (one backoff schedule with max_backoff %v)",
				id, during[i], stop.Sub(start).Round(time.Millisecond), bound, maxBackoff)
		}
	}

	// Once WeCom answers, the next attempt comes within the longest wait
	// of the schedule (max_backoff, +20%); give it the call and a few
	// seconds for timers and peers' notifications.
	recoverWithin := maxBackoff*12/10 + timeout + 3*time.Second
	for i, id := range ids {
		awaitCount(t, id+" tokens issued after the outage", func() int { return fake.Stats(id).Issued - issued[i] }, 1, recoverWithin)
	}
	for _, addr := range survivors {
		for _, id := range ids {
			tok := awaitToken(t, hc, addr, id, 20*time.Millisecond, recoverWithin, nil).AccessToken
			if _, err := wc.WeComAPIDomainIP(t.Context(), tok); err != nil {
				t.Errorf("%s serves %s after the outage a token that WeCom refuses: %v", addr, id, err)
			}
		}
	}
	recovered := time.Since(stop)
	stopUsing()
	wg.Wait()
	for _, id := range append([]string{sid}, ids...) {
		if st := fake.Stats(id); st.DeadUses != 0 {
			t.Errorf("%s: %d dead uses, want 0", id, st.DeadUses)
		}
	}
	if served.Load() == 0 {
		t.Error("the survivors served no corp token during and after the outage")
	}
	t.Logf("both survivors served every corp %v after WeCom answered again; %d tokens served and used meanwhile",
		recovered.Round(time.Millisecond), served.Load())
}
