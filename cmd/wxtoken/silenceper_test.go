package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount"
	oaconfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/util"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestSilenceperOverFacade runs the silenceper/wechat SDK, unmodified,
// against the facade: configured only with the facade's URL (its URI
// modifier) and a client key as the AppSecret, six SDK instances (classic
// and stable tokens, each with two in-memory caches and one Redis cache
// shared as a cluster of business servers would) ask for tokens and
// JS-SDK tickets, and make API calls through the facade, over several
// refresh cycles of 10-second tokens. Every token and ticket an SDK holds
// is live at WeChat when it is used, every API call succeeds, and WeChat
// sees one fetch per refresh cycle, however often the SDKs ask.
func TestSilenceperOverFacade(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 25 s of real time")
	}
	const (
		lifetime, overlap = 10 * time.Second, 4 * time.Second
		load              = 25 * time.Second
	)
	begin := time.Now()
	w := newFacadeWorld(t, wxtest.Config{Lifetime: lifetime, Overlap: overlap, StableRenewBefore: stableRenewBefore,
		TicketLifetime: lifetime}, fmt.Sprintf("{overlap: %s, min_force_interval: 1s}", overlap))
	rs := redistest.New(t, redistest.Options{})

	facadeURL := "http://" + w.m.WeChatAddr()
	util.SetURIModifier(func(u string) string { // process-wide in the SDK
		return strings.Replace(u, "https://api.weixin.qq.com", facadeURL, 1)
	})
	t.Cleanup(func() { util.SetURIModifier(nil) })
	shared := cache.NewRedis(context.Background(), &cache.RedisOpts{Host: rs.Addr()})

	type instance struct {
		name   string
		appid  string
		oa     *officialaccount.OfficialAccount
		ticket bool // wx1 enables the jsapi ticket
	}
	var sdks []instance
	for _, acct := range []struct {
		appid  string
		stable bool
	}{{app1, false}, {app2, true}} {
		for i, c := range []cache.Cache{cache.NewMemory(), cache.NewMemory(), shared} {
			oa := officialaccount.NewOfficialAccount(&oaconfig.Config{AppID: acct.appid, AppSecret: sdkKey, Cache: c, UseStableAK: acct.stable})
			sdks = append(sdks, instance{name: fmt.Sprintf("%s/%d", acct.appid, i), appid: acct.appid, oa: oa, ticket: acct.appid == app1})
		}
	}

	first := time.Now()
	end := first.Add(load)
	var uses, tickets atomic.Int64
	var wg sync.WaitGroup
	for _, s := range sdks {
		wg.Go(func() {
			for time.Now().Before(end) {
				tok, err := s.oa.GetAccessToken()
				if err != nil {
					t.Errorf("%s: GetAccessToken: %v", s.name, err)
					return
				}
				if _, err := w.wc.CallbackIP(t.Context(), tok); err != nil {
					t.Errorf("%s: the SDK's token failed at WeChat: %v", s.name, err)
					return
				}
				// An API call through the facade, as the SDK makes it:
				// forwarded to WeChat with the SDK's token.
				if _, err := s.oa.GetBasic().GetCallbackIP(); err != nil {
					t.Errorf("%s: GetCallbackIP through the facade: %v", s.name, err)
					return
				}
				uses.Add(1)
				if s.ticket {
					if _, err := s.oa.GetJs().GetConfig("https://shop.example/pay"); err != nil {
						t.Errorf("%s: GetConfig: %v", s.name, err)
						return
					}
					ticket, err := s.oa.GetJs().GetTicket(tok)
					if err != nil {
						t.Errorf("%s: GetTicket: %v", s.name, err)
						return
					}
					if info, ok := w.fake.LookupTicket(ticket); !ok || !time.Now().Before(info.Expires) {
						t.Errorf("%s: the SDK holds ticket %q, not live at WeChat (%+v, known %v)", s.name, ticket, info, ok)
						return
					}
					tickets.Add(1)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	read := time.Now()
	s1, s2 := w.fake.Stats(app1), w.fake.Stats(app2)
	if s1.DeadUses != 0 || s2.DeadUses != 0 {
		t.Errorf("dead uses: classic %d, stable %d; want 0", s1.DeadUses, s2.DeadUses)
	}
	if s2.StableForced != 0 {
		t.Errorf("stable forced refreshes = %d, want 0", s2.StableForced)
	}
	// As in oneFetchPerCycle: a refresh cycle of 10 s tokens is 7.5 s to
	// 8 s; allow each a second for timers and the call, and count the
	// most from before wxtoken started.
	cycleMin, cycleMax := 7500*time.Millisecond, 8*time.Second
	least := 1 + int(read.Sub(first)/(cycleMax+time.Second))
	most := 1 + int(read.Sub(begin)/cycleMin)
	if s1.Issued < least || s1.Issued > most || s1.ClassicCalls != s1.Issued {
		t.Errorf("classic: %d calls issued %d tokens in %v; want %d to %d, one per refresh cycle", s1.ClassicCalls, s1.Issued, read.Sub(begin).Round(time.Second), least, most)
	}
	if s2.Issued < least || s2.Issued > most || s2.StableCalls != s2.Issued {
		t.Errorf("stable: %d calls issued %d tokens in %v; want %d to %d, one per refresh cycle", s2.StableCalls, s2.Issued, read.Sub(begin).Round(time.Second), least, most)
	}
	t.Logf("%d SDK instances, %v: %d token uses (each checked live at WeChat and used for one API call through the facade) and %d tickets checked live; classic %d fetches, stable %d calls (%d tokens), bounds %d..%d",
		len(sdks), read.Sub(first).Round(time.Millisecond), uses.Load(), tickets.Load(), s1.ClassicCalls, s2.StableCalls, s2.Issued, least, most)
}
