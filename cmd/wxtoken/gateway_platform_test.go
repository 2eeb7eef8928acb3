package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// TestGatewayPlatform: a platform's authorization events reach its
// destination after wxtoken has acted on them (the authorizer's token is
// served by then), and its authorizers' messages, pushed to the
// "$APPID$" URL, reach the rule that names the authorizer.
func TestGatewayPlatform(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	events, shop, bot := newSink(t), newSink(t), newSink(t)
	const botReply = `<xml><ToUserName><![CDATA[o_x]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[from the bot]]></Content></xml>`
	bot.reply = botReply
	yaml := strings.Replace(platformYAML(t.TempDir(), up.URL), "clients:", `    callback:
      forward:
        - {name: events, to: `+events.URL+`, secret: `+qSecret+`, match: {info_type: [authorized, unauthorized]}}
        - {name: shop, to: `+shop.URL+`, secret: `+botSecret+`, match: {authorizer: [wxauth01], msg_type: [text]}}
        - {name: bot, to: `+bot.URL+`, secret: `+botSecret+`, mode: reply, match: {authorizer: [wxauth01], event: [CLICK]}}
clients:`, 1)
	m := runYAML(t, yaml)
	fake.SetPushTarget(platformComp.AppID, "http://"+m.Addr()+"/callback/component/plat", nil)
	hc := newHTTPClient(t)
	awaitToken(t, hc, m.Addr(), "plat", 10*time.Millisecond, 15*time.Second, nil)

	if _, err := fake.Authorize(t.Context(), platformComp.AppID, "wxauth01"); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	rc := events.next(t)
	checkHMAC(t, rc, qSecret)
	if rc.Credential != "plat" || rc.Message["InfoType"] != "authorized" || rc.Message["AuthorizerAppid"] != "wxauth01" || rc.ID == "" {
		t.Errorf("authorization event delivered as %s", rc.raw)
	}
	// Acted on before it was forwarded: the authorizer is served.
	if status, body := keyCall(t, m.Addr(), "GET", "/v1/tokens/wxauth01", clientKey, ""); status != 200 {
		t.Errorf("authorizer token after its event was delivered: %d %s", status, body)
	}

	target := func(appid string) wxtest.MessageTarget {
		return wxtest.MessageTarget{URL: "http://" + m.Addr() + "/callback/component/plat/" + appid,
			Token: platformComp.Token, EncodingAESKey: platformComp.EncodingAESKey, ReceiveID: platformComp.AppID}
	}
	if a := push(t, target("wxauth02"), wxtest.TextMessage("gh_2", "o_x", "not for shop", 1, time.Now())); string(a.Body) != "success" {
		t.Errorf("another authorizer's message answered %d %q", a.Status, a.Body)
	}
	if a := push(t, target("wxauth01"), wxtest.TextMessage("gh_1", "o_x", "for shop", 1, time.Now())); string(a.Body) != "success" {
		t.Errorf("authorizer message answered %d %q", a.Status, a.Body)
	}
	rc = shop.next(t)
	checkHMAC(t, rc, botSecret)
	if rc.Credential != "plat/wxauth01" || rc.header.Get("X-Wxtoken-Credential") != "plat/wxauth01" || rc.Message["Content"] != "for shop" {
		t.Errorf("authorizer message delivered as %s", rc.raw)
	}
	// A reply rule answers an authorizer's event, sealed with the
	// platform's keys as WeChat expects for its authorizers.
	a := push(t, target("wxauth01"), wxtest.EventMessage("gh_1", "o_x", "CLICK", "menu_1", time.Now()))
	opened, err := target("wxauth01").OpenReply(a.Body)
	if err != nil || string(opened) != botReply {
		t.Errorf("authorizer event answered %q (%q, %v), want the bot's reply sealed", a.Body, opened, err)
	}
	if rc := bot.next(t); rc.Credential != "plat/wxauth01" || rc.Message["EventKey"] != "menu_1" {
		t.Errorf("bot got %s", rc.raw)
	}
	if a := push(t, target("bad appid!"), wxtest.TextMessage("gh_1", "o_x", "x", 2, time.Now())); a.Status != 400 {
		t.Errorf("a malformed appid in the path answered %d", a.Status)
	}

	// Tickets match no rule; an unauthorization does.
	if _, err := fake.PushTicket(t.Context(), platformComp.AppID); err != nil {
		t.Fatal(err)
	}
	if err := fake.Unauthorize(t.Context(), platformComp.AppID, "wxauth01"); err != nil {
		t.Fatal(err)
	}
	if rc := events.next(t); rc.Message["InfoType"] != "unauthorized" {
		t.Errorf("after a ticket, delivered %s; want the unauthorization only", rc.raw)
	}
	if _, got := events.count(); got != 2 {
		t.Errorf("events destination took %d, want 2", got)
	}
	if _, got := shop.count(); got != 1 {
		t.Errorf("shop destination took %d, want 1", got)
	}
}
