package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// Keys of the facade tests' clients, besides clientKey (allowed "*").
const (
	shopKey = "shop-key-0123456789abcdef" // wx1, wx2, plat and its authorizers
	hrKey   = "hr-key-0123456789abcdef"   // hr only
	sdkKey  = "sdk-key-0123456789abcdef"  // wx1, wx2; sdk: silenceper
)

// facadeAuthorizer is the account that authorizes the platform.
const facadeAuthorizer = "wx00000000000000a1"

// facadeYAML configures two Official Accounts, two applications of one
// WeCom corp (hr, hr2), a platform, and the facade.
func facadeYAML(dir, up, refresh string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
wechat_listen: 127.0.0.1:0
data_dir: %s
upstream: {api: %s, api_failover: [], wecom: %s, timeout: 2s}
refresh: %s
credentials:
  - {id: wx1, kind: mp, appid: %s, secret: secret1, mode: classic, tickets: [jsapi, wx_card]}
  - {id: wx2, kind: mp, appid: %s, secret: secret2}
  - {id: hr, kind: wecom, corpid: %s, secret: corp-secret, agentid: 1000002, tickets: [jsapi, agent_config]}
  - {id: hr2, kind: wecom, corpid: %s, secret: corp-secret2}
  - id: plat
    kind: component
    component_appid: %s
    secret: %s
    token: %s
    encoding_aes_key: %s
    tickets: [jsapi]
clients:
  - {name: all, key: %s, allow: ["*"]}
  - {name: shop, key: %s, allow: [wx1, wx2, plat, plat/*]}
  - {name: hr, key: %s, allow: [hr]}
  - {name: sdk, key: %s, allow: [wx1, wx2], sdk: silenceper}
`, dir, up, up, refresh, app1, app2, corp1, corp1, platformComp.AppID, platformComp.Secret, platformComp.Token,
		platformComp.EncodingAESKey, clientKey, shopKey, hrKey, sdkKey)
}

// facadeWorld is a wxtoken with its facade against a fake WeChat.
type facadeWorld struct {
	fake *wxtest.Fake
	up   *httptest.Server
	m    *Main
	wc   *wechat.Client // straight to the fake, to check tokens
	logs *syncBuffer    // wxtoken's log
}

// newFacadeWorld starts the fake and a wxtoken with refresh settings
// refresh (a YAML flow mapping; "" for the tests' usual ones).
func newFacadeWorld(t *testing.T, fc wxtest.Config, refresh string) *facadeWorld {
	t.Helper()
	fake := wxtest.New(fc)
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	fake.AddCorp(corp1, "corp-secret")
	fake.AddCorp(corp1, "corp-secret2")
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	if refresh == "" {
		refresh = "{overlap: 3s, min_force_interval: 1s}"
	}
	cfg, err := config.Parse([]byte(facadeYAML(t.TempDir(), srv.URL, refresh)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	fake.SetPushTarget(platformComp.AppID, "http://"+m.Addr()+"/callback/component/plat", nil)
	w := &facadeWorld{fake: fake, up: srv, m: m, wc: &wechat.Client{API: srv.URL, WeCom: srv.URL, HTTP: srv.Client()}, logs: logs}
	for _, id := range []string{"wx1", "wx2", "hr", "hr2", "plat"} {
		getToken(t, m.Addr(), id)
	}
	return w
}

// wx calls the facade and returns its JSON answer, checking that it is
// WeChat's shape: HTTP 200, JSON, never wxtoken's own error object.
func (w *facadeWorld) wx(t *testing.T, method, path, body string) map[string]any {
	t.Helper()
	return wxCall(t, w.m.WeChatAddr(), method, path, body)
}

// wxCall is facadeWorld.wx on the facade at addr.
func wxCall(t *testing.T, addr, method, path, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: HTTP %d %s %s, want 200 and JSON as WeChat answers", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	if _, ok := out["error"]; ok {
		t.Fatalf("%s %s: wxtoken's error shape on the facade: %s", method, path, raw)
	}
	return out
}

// errcode is an answer's errcode, 0 when it has none (WeChat's success
// answers at cgi-bin/token carry none).
func errcode(out map[string]any) int {
	c, _ := out["errcode"].(float64)
	return int(c)
}

func str(out map[string]any, k string) string { s, _ := out[k].(string); return s }

// live fails the test unless WeChat (the fake) accepts tok now.
func (w *facadeWorld) live(t *testing.T, what, tok string) {
	t.Helper()
	if tok == "" {
		t.Fatalf("%s: no token", what)
	}
	if _, err := w.wc.CallbackIP(t.Context(), tok); err != nil {
		t.Fatalf("%s: token refused by WeChat: %v", what, err)
	}
}

func classicPath(appid, secret string) string {
	return "/cgi-bin/token?" + url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}.Encode()
}

func corpPath(corpid, secret string) string {
	return "/cgi-bin/gettoken?" + url.Values{"corpid": {corpid}, "corpsecret": {secret}}.Encode()
}

// TestFacadeTokens: each token endpoint answers the credential's current
// token, the one /v1 serves, in WeChat's shape, without a fetch.
func TestFacadeTokens(t *testing.T) {
	w := newFacadeWorld(t, wxtest.Config{}, "")
	before := map[string]wxtest.Stats{app1: w.fake.Stats(app1), app2: w.fake.Stats(app2), corp1: w.fake.Stats(corp1),
		platformComp.AppID: w.fake.Stats(platformComp.AppID)}

	out := w.wx(t, "GET", classicPath(app1, shopKey), "")
	if tok := str(out, "access_token"); tok != getToken(t, w.m.Addr(), "wx1").AccessToken || errcode(out) != 0 || out["expires_in"].(float64) <= 0 {
		t.Fatalf("cgi-bin/token: %v, want wx1's current token", out)
	}
	w.live(t, "cgi-bin/token", str(out, "access_token"))
	// expires_in is what /v1 says is left less a second kept for transit
	// (read a moment apart, so to the second), plus the margin of the SDK
	// the client names, if it names one (facade/expires.go).
	for _, c := range []struct {
		key    string
		margin int64
	}{{shopKey, 0}, {sdkKey, 1500}} {
		left := getToken(t, w.m.Addr(), "wx1").ExpiresIn
		in := int64(w.wx(t, "GET", classicPath(app1, c.key), "")["expires_in"].(float64))
		if d := in - c.margin - left; d < -2 || d > -1 {
			t.Errorf("expires_in %d for a client with margin %d, /v1 says %d s are left", in, c.margin, left)
		}
	}

	stable := fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q}`, app2, shopKey)
	out = w.wx(t, "POST", "/cgi-bin/stable_token", stable)
	wx2 := getToken(t, w.m.Addr(), "wx2").AccessToken
	if str(out, "access_token") != wx2 {
		t.Fatalf("stable_token: %v, want wx2's token %s", out, wx2)
	}
	// force_refresh is a report, never passed on: once WeChat has ended
	// the token it gets the new one (WeChat asked without force, as for
	// any report); while the token is live, it stays. (A check answers
	// the reports of the next 3 s, so the dead case comes first.)
	force := strings.Replace(stable, "}", `,"force_refresh":true}`, 1)
	w.fake.Expire(app2)
	out = w.wx(t, "POST", "/cgi-bin/stable_token", force)
	fresh := str(out, "access_token")
	if fresh == wx2 || fresh != getToken(t, w.m.Addr(), "wx2").AccessToken {
		t.Fatalf("stable_token force_refresh of a token WeChat ended: %v, want wx2's new token", out)
	}
	w.live(t, "stable_token after force_refresh", fresh)
	out = w.wx(t, "POST", "/cgi-bin/stable_token", force)
	if str(out, "access_token") != fresh {
		t.Fatalf("stable_token force_refresh of a live token: %v, want the same token %s", out, fresh)
	}
	if st := w.fake.Stats(app2); st.StableForced != 0 {
		t.Errorf("%d forced stable_token calls, want 0", st.StableForced)
	}
	before[app2] = w.fake.Stats(app2)

	out = w.wx(t, "GET", corpPath(corp1, hrKey), "")
	if str(out, "access_token") != getToken(t, w.m.Addr(), "hr").AccessToken || errcode(out) != 0 || str(out, "errmsg") != "ok" {
		t.Fatalf("gettoken: %v, want hr's token with errcode 0", out)
	}
	// A key allowed both applications of the corp names one.
	out = w.wx(t, "GET", corpPath(corp1, clientKey+".hr2"), "")
	if str(out, "access_token") != getToken(t, w.m.Addr(), "hr2").AccessToken {
		t.Fatalf("gettoken with <key>.hr2: %v, want hr2's token", out)
	}
	w.live(t, "gettoken hr2", str(out, "access_token"))

	comp := fmt.Sprintf(`{"component_appid":%q,"component_appsecret":%q,"component_verify_ticket":null}`, platformComp.AppID, shopKey)
	out = w.wx(t, "POST", "/cgi-bin/component/api_component_token", comp)
	ctok := str(out, "component_access_token")
	if ctok != getToken(t, w.m.Addr(), "plat").AccessToken {
		t.Fatalf("api_component_token: %v, want plat's token", out)
	}
	// A stale ticket is ignored as well.
	out = w.wx(t, "POST", "/cgi-bin/component/api_component_token", strings.Replace(comp, "null", `"ticket@@@stale"`, 1))
	if str(out, "component_access_token") != ctok {
		t.Fatalf("api_component_token with a stale ticket: %v, want plat's token", out)
	}

	for id, st := range before {
		now := w.fake.Stats(id)
		if now.ClassicCalls != st.ClassicCalls || now.StableCalls != st.StableCalls || now.Issued != st.Issued || now.StableForced != 0 {
			t.Errorf("%s: WeChat's token endpoints called through the facade: %+v, then %+v", id, st, now)
		}
	}
}

// TestFacadeAuthorizerAndTickets: the tokens the facade handed out get
// authorizer tokens and tickets, the ones WeChat holds.
func TestFacadeAuthorizerAndTickets(t *testing.T) {
	w := newFacadeWorld(t, wxtest.Config{}, "")
	if _, err := w.fake.Authorize(t.Context(), platformComp.AppID, facadeAuthorizer); err != nil {
		t.Fatal(err)
	}
	getToken(t, w.m.Addr(), facadeAuthorizer)
	ctok := str(w.wx(t, "POST", "/cgi-bin/component/api_component_token",
		fmt.Sprintf(`{"component_appid":%q,"component_appsecret":%q}`, platformComp.AppID, shopKey)), "component_access_token")
	body := fmt.Sprintf(`{"component_appid":%q,"authorizer_appid":%q,"authorizer_refresh_token":"held-by-the-sdk"}`, platformComp.AppID, facadeAuthorizer)
	out := w.wx(t, "POST", "/cgi-bin/component/api_authorizer_token?component_access_token="+ctok, body)
	atok := str(out, "authorizer_access_token")
	if atok != getToken(t, w.m.Addr(), facadeAuthorizer).AccessToken || str(out, "authorizer_refresh_token") != "held-by-the-sdk" {
		t.Fatalf("api_authorizer_token: %v, want the authorizer's token and the refresh token sent", out)
	}
	w.live(t, "authorizer", atok)

	wx1 := str(w.wx(t, "GET", classicPath(app1, shopKey), ""), "access_token")
	hr := str(w.wx(t, "GET", corpPath(corp1, hrKey), ""), "access_token")
	for _, c := range []struct {
		what, path string
		key        wxtest.TicketKey
	}{
		{"jsapi", "/cgi-bin/ticket/getticket?type=jsapi&access_token=" + wx1, wxtest.TicketKey{Account: app1, Type: wxtest.TicketJSAPI}},
		{"wx_card", "/cgi-bin/ticket/getticket?type=wx_card&access_token=" + wx1, wxtest.TicketKey{Account: app1, Type: wxtest.TicketCard}},
		{"authorizer jsapi", "/cgi-bin/ticket/getticket?type=jsapi&access_token=" + atok, wxtest.TicketKey{Account: facadeAuthorizer, Type: wxtest.TicketJSAPI}},
		{"corp jsapi", "/cgi-bin/get_jsapi_ticket?access_token=" + hr, wxtest.TicketKey{Account: corp1, Type: wxtest.TicketJSAPI}},
		{"agent_config", "/cgi-bin/ticket/get?type=agent_config&access_token=" + hr, wxtest.TicketKey{Account: corp1, Type: wxtest.TicketAgent, App: "corp-secret"}},
	} {
		var out map[string]any
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if out = w.wx(t, "GET", c.path, ""); errcode(out) != wechat.CodeSystemBusy || time.Now().After(deadline) {
				break // -1 while the ticket's first fetch is under way
			}
		}
		info, ok := w.fake.TicketInfo(c.key)
		if errcode(out) != 0 || str(out, "errmsg") != "ok" || !ok || str(out, "ticket") != info.Value || out["expires_in"].(float64) <= 0 {
			t.Errorf("%s: %v, want errcode 0 and the fake's ticket %q", c.what, out, info.Value)
		}
	}
}

// TestFacadeErrors: every refusal is WeChat's shape with WeChat's
// errcode, for the endpoint it came to.
func TestFacadeErrors(t *testing.T) {
	w := newFacadeWorld(t, wxtest.Config{}, "")
	wx1 := str(w.wx(t, "GET", classicPath(app1, shopKey), ""), "access_token")
	hr := str(w.wx(t, "GET", corpPath(corp1, hrKey), ""), "access_token")
	ctok := str(w.wx(t, "POST", "/cgi-bin/component/api_component_token",
		fmt.Sprintf(`{"component_appid":%q,"component_appsecret":%q}`, platformComp.AppID, shopKey)), "component_access_token")
	const unknownApp = "wx00000000000000ff"
	stable := func(appid, secret string) string {
		return fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q}`, appid, secret)
	}
	authorizer := func(comp, auth string) string {
		return fmt.Sprintf(`{"component_appid":%q,"authorizer_appid":%q,"authorizer_refresh_token":"x"}`, comp, auth)
	}
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"token: wrong key", "GET", classicPath(app1, "not-a-key-0123456789"), "", 40125},
		{"token: wrong key, unknown appid", "GET", classicPath(unknownApp, "not-a-key-0123456789"), "", 40125},
		{"token: unknown appid", "GET", classicPath(unknownApp, shopKey), "", 40013},
		{"token: forbidden appid", "GET", classicPath(app1, hrKey), "", 40013},
		{"token: a corp at the account endpoint", "GET", classicPath(corp1, clientKey), "", 40013},
		{"token: no appid", "GET", classicPath("", shopKey), "", 41002},
		{"token: no secret", "GET", classicPath(app1, ""), "", 41004},
		{"token: grant_type", "GET", "/cgi-bin/token?grant_type=password&appid=" + app1 + "&secret=" + shopKey, "", 40002},
		{"token: POST", "POST", classicPath(app1, shopKey), "", 43001},
		{"stable: wrong key", "POST", "/cgi-bin/stable_token", stable(app2, "not-a-key-0123456789"), 40125},
		{"stable: forbidden appid", "POST", "/cgi-bin/stable_token", stable(app2, hrKey), 40013},
		{"stable: unknown appid", "POST", "/cgi-bin/stable_token", stable(unknownApp, shopKey), 40013},
		{"stable: GET", "GET", "/cgi-bin/stable_token", "", 43002},
		{"stable: malformed JSON", "POST", "/cgi-bin/stable_token", `{"appid":`, 47001},
		{"stable: not an object", "POST", "/cgi-bin/stable_token", `["client_credential"]`, 47001},
		{"stable: empty body", "POST", "/cgi-bin/stable_token", ``, 47001},
		{"stable: trailing data", "POST", "/cgi-bin/stable_token", stable(app2, shopKey) + `{}`, 47001},
		{"stable: oversized body", "POST", "/cgi-bin/stable_token", `{"appid":"` + strings.Repeat("x", 5000) + `"}`, 47001},
		{"gettoken: wrong key", "GET", corpPath(corp1, "not-a-key-0123456789"), "", 40001},
		{"gettoken: forbidden corp", "GET", corpPath(corp1, shopKey), "", 40013},
		{"gettoken: ambiguous", "GET", corpPath(corp1, clientKey), "", 40001},
		{"gettoken: names an app not allowed", "GET", corpPath(corp1, hrKey+".hr2"), "", 40013},
		{"gettoken: unknown corp", "GET", corpPath("ww00000000000000ff", clientKey), "", 40013},
		{"gettoken: no corpid", "GET", corpPath("", hrKey), "", 41002},
		{"gettoken: no corpsecret", "GET", corpPath(corp1, ""), "", 41004},
		{"component: wrong key", "POST", "/cgi-bin/component/api_component_token",
			fmt.Sprintf(`{"component_appid":%q,"component_appsecret":"not-a-key-0123456789"}`, platformComp.AppID), 40125},
		{"component: forbidden", "POST", "/cgi-bin/component/api_component_token",
			fmt.Sprintf(`{"component_appid":%q,"component_appsecret":%q}`, platformComp.AppID, hrKey), 40013},
		{"component: an account's appid", "POST", "/cgi-bin/component/api_component_token",
			fmt.Sprintf(`{"component_appid":%q,"component_appsecret":%q}`, app1, shopKey), 40013},
		{"component: malformed JSON", "POST", "/cgi-bin/component/api_component_token", `{`, 47001},
		{"authorizer: no token", "POST", "/cgi-bin/component/api_authorizer_token", authorizer(platformComp.AppID, facadeAuthorizer), 41001},
		{"authorizer: a token not issued here", "POST", "/cgi-bin/component/api_authorizer_token?component_access_token=made-up",
			authorizer(platformComp.AppID, facadeAuthorizer), 40001},
		{"authorizer: an account's token", "POST", "/cgi-bin/component/api_authorizer_token?component_access_token=" + wx1,
			authorizer(platformComp.AppID, facadeAuthorizer), 40014},
		{"authorizer: another platform's appid", "POST", "/cgi-bin/component/api_authorizer_token?component_access_token=" + ctok,
			authorizer(app1, facadeAuthorizer), 40013},
		{"authorizer: not authorized", "POST", "/cgi-bin/component/api_authorizer_token?access_token=" + ctok,
			authorizer(platformComp.AppID, "wx00000000000000a9"), 61003},
		{"authorizer: malformed JSON", "POST", "/cgi-bin/component/api_authorizer_token?access_token=" + ctok, `{"component_appid"`, 47001},
		{"getticket: no token", "GET", "/cgi-bin/ticket/getticket?type=jsapi", "", 41001},
		{"getticket: a token not issued here", "GET", "/cgi-bin/ticket/getticket?type=jsapi&access_token=made-up", "", 40001},
		{"getticket: a WeCom token", "GET", "/cgi-bin/ticket/getticket?type=jsapi&access_token=" + hr, "", 40014},
		{"getticket: bad type", "GET", "/cgi-bin/ticket/getticket?type=other&access_token=" + wx1, "", 40097},
		{"getticket: ticket not kept", "GET", "/cgi-bin/ticket/getticket?type=jsapi&access_token=" + ctok, "", 40014},
		{"get_jsapi_ticket: an account's token", "GET", "/cgi-bin/get_jsapi_ticket?access_token=" + wx1, "", 40014},
		{"ticket/get: bad type", "GET", "/cgi-bin/ticket/get?type=jsapi&access_token=" + hr, "", 40097},
		{"forward: no token", "GET", "/cgi-bin/user/info?openid=o1", "", 41001},
		{"forward: a secret, no token", "GET", "/sns/component/jscode2session?grant_type=authorization_code&js_code=c&appid=" + app1 + "&secret=" + shopKey, "", 41001},
		// WeChat's own answer: the key was taken, the AppSecret put in.
		{"login: a code WeChat never issued", "GET", "/sns/jscode2session?grant_type=authorization_code&js_code=c&appid=" + app1 + "&secret=" + shopKey, "", 40029},
		{"login: wrong key", "GET", "/sns/jscode2session?grant_type=authorization_code&js_code=c&appid=" + app1 + "&secret=not-a-key-0123456789", "", 40125},
		{"login: forbidden appid", "GET", "/sns/oauth2/access_token?grant_type=authorization_code&code=c&appid=" + app1 + "&secret=" + hrKey, "", 40013},
		{"login: a corp", "GET", "/sns/jscode2session?grant_type=authorization_code&js_code=c&appid=" + corp1 + "&secret=" + hrKey, "", 40013},
		{"login: POST", "POST", "/sns/jscode2session?grant_type=authorization_code&js_code=c&appid=" + app1 + "&secret=" + shopKey, "", 43001},
		{"forward: a token not issued here", "GET", "/cgi-bin/user/info?access_token=made-up", "", 40001},
	}
	// wx2 has no tickets: a ticket of it is not kept.
	wx2 := str(w.wx(t, "POST", "/cgi-bin/stable_token", stable(app2, shopKey)), "access_token")
	cases = append(cases, struct {
		name, method, path, body string
		want                     int
	}{"getticket: not enabled", "GET", "/cgi-bin/ticket/getticket?type=jsapi&access_token=" + wx2, "", 48001})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := w.wx(t, c.method, c.path, c.body)
			if errcode(out) != c.want || str(out, "errmsg") == "" || len(out) != 2 {
				t.Errorf("got %v, want only errcode %d and an errmsg", out, c.want)
			}
			for _, secret := range []string{"secret1", "secret2", "corp-secret", platformComp.Secret} {
				if strings.Contains(str(out, "errmsg"), secret) {
					t.Errorf("errmsg %q holds an AppSecret", str(out, "errmsg"))
				}
			}
		})
	}
}

// TestFacadeForwards: any other path is forwarded to WeChat with a token
// wxtoken issued; a token WeChat refuses is reported and the call made
// once more with the new token, once however many calls meet it; a body
// too large to keep streams through and is not retried.
func TestFacadeForwards(t *testing.T) {
	w := newFacadeWorld(t, wxtest.Config{}, "")
	wx1 := str(w.wx(t, "GET", classicPath(app1, shopKey), ""), "access_token")
	hr := str(w.wx(t, "GET", corpPath(corp1, hrKey), ""), "access_token")
	for path, tok := range map[string]string{"/cgi-bin/getcallbackip": wx1, "/cgi-bin/get_api_domain_ip": hr} {
		if out := w.wx(t, "GET", path+"?access_token="+tok, ""); out["ip_list"] == nil {
			t.Fatalf("%s forwarded: %v, want WeChat's ip_list", path, out)
		}
	}

	// WeChat ends the token early: the calls that meet it are retried
	// with one new token.
	w.fake.Expire(app1)
	before := w.fake.Stats(app1).ClassicCalls
	const calls = 20
	outs := make(chan map[string]any, calls)
	for i := range calls {
		go func() {
			if i%2 == 0 {
				outs <- w.wx(t, "GET", "/cgi-bin/getcallbackip?access_token="+wx1, "")
			} else {
				outs <- w.wx(t, "POST", "/cgi-bin/clear_quota?access_token="+wx1, fmt.Sprintf(`{"appid":%q}`, app1))
			}
		}()
	}
	for range calls {
		if out := <-outs; out["ip_list"] == nil && (errcode(out) != 0 || str(out, "errmsg") != "ok") {
			t.Errorf("a call with a token WeChat ended: %v, want it retried with the new one", out)
		}
	}
	if got := w.fake.Stats(app1).ClassicCalls - before; got != 1 {
		t.Errorf("%d fetches for %d calls meeting one dead token, want 1", got, calls)
	}
	if now := getToken(t, w.m.Addr(), "wx1").AccessToken; now == wx1 {
		t.Errorf("wx1 still serves the token WeChat ended")
	}

	// A body over the replay bound streams, and WeChat's answer stands.
	w.fake.Expire(app1)
	dead := getToken(t, w.m.Addr(), "wx1").AccessToken
	before = w.fake.Stats(app1).ClassicCalls
	big := fmt.Sprintf(`{"appid":%q%s}`, app1, strings.Repeat(" ", 100<<10))
	if out := w.wx(t, "POST", "/cgi-bin/clear_quota?access_token="+dead, big); errcode(out) != wechat.CodeTokenExpired {
		t.Errorf("a large call with a dead token: %v, want WeChat's 42001 as it came", out)
	}
	if got := w.fake.Stats(app1).ClassicCalls - before; got != 0 {
		t.Errorf("%d fetches for a call that is not retried, want 0", got)
	}
}

// TestFacadeForwardUnreachable: a call WeChat cannot be reached for is
// WeChat's -1, and the log, which says so, holds no token.
func TestFacadeForwardUnreachable(t *testing.T) {
	w := newFacadeWorld(t, wxtest.Config{}, "")
	wx1 := str(w.wx(t, "GET", classicPath(app1, shopKey), ""), "access_token")
	w.up.Close()
	if out := w.wx(t, "GET", "/cgi-bin/getcallbackip?access_token="+wx1, ""); errcode(out) != wechat.CodeSystemBusy {
		t.Errorf("a call WeChat cannot be reached for: %v, want -1", out)
	}
	if logs := w.logs.String(); !strings.Contains(logs, "forwarded call failed") || strings.Contains(logs, wx1) {
		t.Errorf("log: want the failure without the token %s:\n%s", wx1, logs)
	}
}

// TestFacadeLogin: a Mini Program's and a web page's login codes are
// exchanged through the facade with the client key where the AppSecret
// goes: WeChat gets the AppSecret and answers the user's identity, the
// code works once, and the AppSecret shows in no answer and no log line.
func TestFacadeLogin(t *testing.T) {
	w := newFacadeWorld(t, wxtest.Config{}, "")
	for _, tt := range []struct{ path, param, want string }{
		{"/sns/jscode2session", "js_code", "session_key"},
		{"/sns/oauth2/access_token", "code", "refresh_token"},
	} {
		code, err := w.fake.LoginCode(app1, "openid-"+tt.param)
		if err != nil {
			t.Fatal(err)
		}
		path := tt.path + "?grant_type=authorization_code&appid=" + app1 + "&secret=" + shopKey + "&" + tt.param + "=" + code
		out := w.wx(t, "GET", path, "")
		if str(out, "openid") != "openid-"+tt.param || str(out, tt.want) == "" {
			t.Fatalf("%s: %v, want the user's openid and %s", tt.path, out, tt.want)
		}
		if strings.Contains(fmt.Sprint(out), "secret1") {
			t.Errorf("%s: the answer holds the AppSecret", tt.path)
		}
		if again := w.wx(t, "GET", path, ""); errcode(again) != 40163 {
			t.Errorf("%s with the code again: %v, want 40163 (code been used)", tt.path, again)
		}
	}
	if st := w.fake.Stats(app1); st.LoginCalls != 4 {
		t.Errorf("WeChat saw %d login calls, want 4", st.LoginCalls)
	}
	if strings.Contains(w.logs.String(), "secret1") {
		t.Error("the AppSecret is in the log")
	}
}
