package main

import (
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestFacadeCluster: a token one instance's facade handed out works at
// another's, for its ticket and for forwarded calls, and so does one just
// replaced; a token WeChat ended, met at the other instance, costs the
// cluster one fetch.
func TestFacadeCluster(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	rs := redistest.New(t, redistest.Options{})
	c := clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{overlap: 3s, min_force_interval: 1s}",
		Credentials: `
  - {id: wx1, kind: mp, appid: ` + app1 + `, secret: secret1, mode: classic, tickets: [jsapi]}`}
	a, b := startNode(t, "wechat_listen: 127.0.0.1:0\n"+c.yaml()), startNode(t, "wechat_listen: 127.0.0.1:0\n"+c.yaml())
	getToken(t, a.addr(), "wx1")
	getToken(t, b.addr(), "wx1")
	fa, fb := a.m.WeChatAddr(), b.m.WeChatAddr()

	tok := str(wxCall(t, fa, "GET", classicPath(app1, clientKey), ""), "access_token")
	ticket := func(addr, tok string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			out := wxCall(t, addr, "GET", "/cgi-bin/ticket/getticket?type=jsapi&access_token="+tok, "")
			if errcode(out) != wechat.CodeSystemBusy || time.Now().After(deadline) {
				return out
			}
		}
	}
	out := ticket(fb, tok)
	want, _ := fake.TicketInfo(wxtest.TicketKey{Account: app1, Type: wxtest.TicketJSAPI}) // fetched by now
	if str(out, "ticket") == "" || str(out, "ticket") != want.Value {
		t.Fatalf("ticket at the other instance with the first's token: %v, want %q", out, want.Value)
	}
	if out := wxCall(t, fb, "GET", "/cgi-bin/getcallbackip?access_token="+tok, ""); out["ip_list"] == nil {
		t.Fatalf("forwarded at the other instance with the first's token: %v", out)
	}

	// WeChat ends the token; the other instance meets it, reports it, and
	// retries with the one new token.
	fake.Expire(app1)
	before := fake.Stats(app1).ClassicCalls
	if out := wxCall(t, fb, "GET", "/cgi-bin/getcallbackip?access_token="+tok, ""); out["ip_list"] == nil {
		t.Fatalf("a call with a token WeChat ended, at the other instance: %v, want it retried", out)
	}
	if got := fake.Stats(app1).ClassicCalls - before; got != 1 {
		t.Errorf("%d fetches for one dead token, want 1", got)
	}
	// The replaced token still names its credential, at both instances.
	for _, addr := range []string{fa, fb} {
		if out := ticket(addr, tok); str(out, "ticket") != want.Value {
			t.Errorf("ticket at %s with the replaced token: %v, want %q", addr, out, want.Value)
		}
	}
}
