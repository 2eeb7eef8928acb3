package wxtest

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestSynctest runs a Fake with its default clock inside a synctest bubble:
// hours of token life pass in no real time, through Client.
func TestSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{})
		f.AddApp(appID, appSecret)
		c := caller{t: t, c: f.Client(), base: "https://api.weixin.qq.com"}

		first := mustToken(t, c.classic(appID, appSecret))
		second := mustToken(t, c.classic(appID, appSecret))
		stable := mustToken(t, c.stable(appID, appSecret, false))

		time.Sleep(5*time.Minute - time.Second)
		if got := c.use(first); got != 0 {
			t.Errorf("replaced token just inside the overlap: %d, want 0", got)
		}
		time.Sleep(time.Second)
		if got := c.use(first); got != codeInvalidCredential {
			t.Errorf("replaced token after the overlap: %d, want %d", got, codeInvalidCredential)
		}

		time.Sleep(2 * time.Hour)
		if got := c.use(second); got != codeTokenExpired {
			t.Errorf("token after its lifetime: %d, want %d", got, codeTokenExpired)
		}
		next := mustToken(t, c.stable(appID, appSecret, false))
		if next == stable {
			t.Errorf("stable call after expiry returned the expired token")
		}
	})
}

// TestSynctestComponent runs a third-party platform inside a bubble: the
// background push of api_start_push_ticket, pushes to a receiver reached
// through HandlerClient, and half a day of ticket life in no real time.
func TestSynctestComponent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{})
		defer f.Close()
		f.AddComponent(testComponent)
		recv := newReceiver(testComponent)
		f.SetPushTarget(componentAppID, "https://platform.example/wechat/component", HandlerClient(recv))
		c := caller{t: t, c: f.Client(), base: "https://api.weixin.qq.com"}

		if r := c.startPush(componentAppID, componentSecret); r.ErrCode != 0 {
			t.Fatalf("start_push_ticket: %s", r.Body)
		}
		synctest.Wait()
		if n := len(recv.all()); n != 0 {
			t.Fatalf("%d pushes before the delay", n)
		}
		time.Sleep(startPushDelay)
		synctest.Wait()
		evs := recv.all()
		if len(evs) != 1 || evs[0].ComponentVerifyTicket == "" {
			t.Fatalf("after the delay: events %+v, refused %v", evs, recv.refusals())
		}
		ticket := evs[0].ComponentVerifyTicket

		ctok := c.componentToken(componentAppID, componentSecret, ticket).ComponentAccessToken
		code, err := f.Authorize(context.Background(), componentAppID, authorizerAppID)
		if err != nil {
			t.Fatal(err)
		}
		auth := c.queryAuth(ctok, componentAppID, code)
		if auth.ErrCode != 0 {
			t.Fatalf("query_auth: %s", auth.Body)
		}

		time.Sleep(2 * time.Hour)
		if got := c.use(auth.Info.AccessToken); got != codeTokenExpired {
			t.Errorf("authorizer token after 2 h: %d, want %d", got, codeTokenExpired)
		}
		if r := c.authorizerToken(ctok, componentAppID, authorizerAppID, auth.Info.RefreshToken); r.ErrCode != codeTokenExpired {
			t.Errorf("refresh with an expired component token: %s, want errcode %d", r.Body, codeTokenExpired)
		}
		if r := c.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != 0 {
			t.Errorf("ticket after 2 h: %s", r.Body)
		}

		time.Sleep(10 * time.Hour)
		if r := c.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != codeTicketExpired {
			t.Errorf("ticket after 12 h: %s, want errcode %d", r.Body, codeTicketExpired)
		}

		// Close drops a push still waiting for its delay.
		if r := c.startPush(componentAppID, componentSecret); r.ErrCode != 0 {
			t.Fatalf("start_push_ticket: %s", r.Body)
		}
		f.Close()
		time.Sleep(time.Minute)
		if got := f.Stats(componentAppID); len(recv.all()) != 2 || got.Pushes != 2 || got.PushFailures != 0 {
			t.Errorf("after Close: %d events, Stats %+v; want only the Authorize push added", len(recv.all()), got)
		}
	})
}

// TestSynctestSuite runs a WeCom suite inside a bubble: pushes reach a
// receiver through HandlerClient, and the 30 minutes of a suite_ticket,
// the 10 of an auth code and the 2 hours of a corp token pass in no real
// time.
func TestSynctestSuite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{})
		f.AddSuite(testSuite)
		recv := newSuiteReceiver(testSuite)
		f.SetPushTarget(suiteID, "https://provider.example/wecom/suite", HandlerClient(recv))
		c := caller{t: t, c: f.Client(), base: "https://qyapi.weixin.qq.com"}
		ctx := context.Background()

		ticket, err := f.PushSuiteTicket(ctx, suiteID)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30*time.Minute - time.Second)
		stok := c.suiteToken(suiteID, suiteSecret, ticket).SuiteAccessToken
		if stok == "" {
			t.Fatal("ticket just inside 30 minutes: no suite token")
		}
		time.Sleep(time.Second)
		if r := c.suiteToken(suiteID, suiteSecret, ticket); r.code() != codeBadSuiteTicket {
			t.Errorf("ticket at 30 minutes: %s, want errcode %d", r.Body, codeBadSuiteTicket)
		}

		code, err := f.CreateAuth(ctx, suiteID, authCorpID)
		if err != nil || recv.last().AuthCode != code {
			t.Fatalf("CreateAuth = %q, %v; receiver got %+v, refused %v", code, err, recv.last(), recv.refusals())
		}
		late, _ := f.CreateAuth(ctx, suiteID, corpID)
		r := c.permanentCode(stok, code, true)
		if r.code() != 0 {
			t.Fatalf("get_permanent_code: %s", r.Body)
		}
		time.Sleep(10 * time.Minute)
		if r := c.permanentCode(stok, late, false); r.code() != codeBadAuthCode {
			t.Errorf("auth code after 10 minutes: %s, want errcode %d", r.Body, codeBadAuthCode)
		}
		time.Sleep(2 * time.Hour)
		if got := c.weComUse(r.AccessToken); got != codeTokenExpired {
			t.Errorf("corp token after 2 h: %d, want %d", got, codeTokenExpired)
		}
		if r := c.corpToken(stok, authCorpID, r.PermanentCode); r.code() != codeSuiteTokenExpired {
			t.Errorf("suite token after 2 h: %s, want errcode %d", r.Body, codeSuiteTokenExpired)
		}
	})
}
