package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// WeCom third-party suites (WECHAT.md §7) run end to end: a real Main on
// a real listener, the fake WeCom pushing to its command callback
// /callback/suite/{id}, sealed with the suite's token and EncodingAESKey
// for the suite id as receive id (§5).

// The fake's WeCom suite, custom-developed app template and provider, as
// the instance is configured with them. A suite id starting "dk" is a
// custom-developed app (代开发): its corps' tokens come from gettoken with
// the permanent code as the corp's app secret.
var (
	suiteApp = wxtest.Suite{SuiteID: "ww5e17e00000000001", Secret: "suite-secret-NEVER-SHOWN",
		Token: "suite-token", EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
	suiteCustomApp = wxtest.Suite{SuiteID: "dk5e17e00000000002", Secret: "dk-secret-NEVER-SHOWN",
		Token: "dk-token", EncodingAESKey: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"}
)

// The provider's corpid and secret, and the corps that install the suites.
const (
	suiteProviderCorp, suiteProviderSecret = "ww00000000000000f1", "provider-secret-NEVER-SHOWN"
	suiteCorp1, suiteCorp2, suiteCorp3     = "ww00000000000000c1", "ww00000000000000c2", "ww00000000000000c3"
)

// suiteEnv is an instance serving the suites and the provider, and the
// fake WeCom it calls.
type suiteEnv struct {
	fake *wxtest.Fake
	up   string // the fake's URL
	m    *Main
	addr string
	hc   *http.Client
	wc   *wechat.Client // calls the fake as a business server would
}

// suiteStart runs the fake with fc and an instance configured with the
// suite (its jsapi and agent_config tickets enabled), the custom app
// template and the provider. The client may use all three and their
// corps, and import into the suite. No push target is set.
func suiteStart(t *testing.T, fc wxtest.Config) *suiteEnv {
	t.Helper()
	fake := wxtest.New(fc)
	fake.AddSuite(suiteApp)
	fake.AddSuite(suiteCustomApp)
	fake.AddProvider(suiteProviderCorp, suiteProviderSecret)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	s, dk := suiteApp, suiteCustomApp
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
upstream: {api: %s, wecom: %s, timeout: 2s}
refresh: {overlap: 3s, min_force_interval: 1s}
credentials:
  - {kind: suite, suite_id: %s, suite_secret: %s, token: %s, encoding_aes_key: %s, tickets: [jsapi, agent_config]}
  - {kind: suite, suite_id: %s, suite_secret: %s, token: %s, encoding_aes_key: %s}
  - {kind: provider, corpid: %s, provider_secret: %s}
clients:
  - {name: e2e, key: %s, allow: [%s, %s/*, %s, %s/*, %s], import: [%s]}
`, t.TempDir(), srv.URL, srv.URL,
		s.SuiteID, s.Secret, s.Token, s.EncodingAESKey,
		dk.SuiteID, dk.Secret, dk.Token, dk.EncodingAESKey,
		suiteProviderCorp, suiteProviderSecret,
		clientKey, s.SuiteID, s.SuiteID, dk.SuiteID, dk.SuiteID, suiteProviderCorp, s.SuiteID)
	m := runYAML(t, yaml)
	return &suiteEnv{fake: fake, up: srv.URL, m: m, addr: m.Addr(), hc: newHTTPClient(t),
		wc: &wechat.Client{API: srv.URL, WeCom: srv.URL}}
}

// suitePushTo points the fake's pushes for s at the instance's command
// callback of s.
func (e *suiteEnv) suitePushTo(s wxtest.Suite, client *http.Client) {
	e.fake.SetPushTarget(s.SuiteID, "http://"+e.addr+"/callback/suite/"+s.SuiteID, client)
}

// suiteCorpID is the credential id of corpid's installation of suite s.
func suiteCorpID(s wxtest.Suite, corpid string) string { return s.SuiteID + "/" + corpid }

// suiteReadyWarnings is what GET /readyz warns of.
func suiteReadyWarnings(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Warnings []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return out.Warnings
}

// suiteWarns reports whether a warning names the suite's missing or late
// suite_ticket.
func suiteWarns(warnings []string, s wxtest.Suite) bool {
	return slices.ContainsFunc(warnings, func(w string) bool {
		return strings.Contains(w, s.SuiteID) && strings.Contains(w, "suite_ticket")
	})
}

// suiteTicketUsable is wxtoken_platform_ticket_usable of the suite, -1
// when the series is missing.
func suiteTicketUsable(t *testing.T, addr string, s wxtest.Suite) float64 {
	t.Helper()
	fams, _ := scrape(t, "http://"+addr+"/metrics")
	v, ok := value(fams, "wxtoken_platform_ticket_usable", "credential", s.SuiteID, "kind", "suite")
	if !ok {
		return -1
	}
	return v
}

// suiteJSTicket asks for the ticket of type typ of credential id, and
// returns the answer's status and ticket.
func (e *suiteEnv) suiteJSTicket(t *testing.T, id, typ string) (int, string) {
	t.Helper()
	status, body := keyCall(t, e.addr, "GET", "/v1/tokens/"+id+"/tickets/"+typ, clientKey, "")
	var out struct{ Ticket string }
	if status == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("ticket %s of %s: %v: %s", typ, id, err, body)
		}
	}
	return status, out.Ticket
}

// suiteLive fails the test unless WeCom accepts tok, served as id's.
func (e *suiteEnv) suiteLive(t *testing.T, id, tok string) {
	t.Helper()
	if _, err := e.wc.WeComAPIDomainIP(t.Context(), tok); err != nil {
		t.Errorf("%s: the served token does not work at WeCom: %v", id, err)
	}
}

// suiteVerifyQuery is the query of WeCom's URL verification of the suite's
// command callback, echostr sealed by c, signed with token at ts.
func suiteVerifyQuery(t *testing.T, c *callback.Crypter, token string, ts time.Time, echo string) url.Values {
	t.Helper()
	enc, err := c.Encrypt([]byte(echo))
	if err != nil {
		t.Fatal(err)
	}
	stamp, nonce := strconv.FormatInt(ts.Unix(), 10), "263014780"
	return url.Values{"msg_signature": {callback.MsgSignature(token, stamp, nonce, enc)},
		"timestamp": {stamp}, "nonce": {nonce}, "echostr": {enc}}
}

// suiteGet is one GET without a key; it returns the status and body.
func suiteGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSuiteEndToEnd runs a WeCom suite's life through an in-process Main:
// a missing suite_ticket reported by /readyz, the command callback's URL
// verification, the ticket push and the suite token it buys, a corp's
// installation (create_auth) with its token and JS-SDK tickets served and
// refreshed ahead of expiry, its removal (cancel_auth) answered 410 and
// never fetched again until the corp installs the suite anew, import and
// listing of a suite's corps, the provider's token, and a custom-developed
// app's corp served from gettoken.
func TestSuiteEndToEnd(t *testing.T) {
	// Tokens live 5 s, so that a corp's token is refreshed twice within
	// the test; tickets an hour, so that the ticket served is the one
	// WeCom issued first.
	e := suiteStart(t, wxtest.Config{Lifetime: 5 * time.Second, TicketLifetime: time.Hour, Overlap: 3 * time.Second})
	ctx := t.Context()
	s := suiteApp

	// No push yet: WeCom pushes a suite_ticket every ten minutes and no
	// API asks for one, so the gap is reported, not waited out.
	if ws := suiteReadyWarnings(t, e.addr); !suiteWarns(ws, s) {
		t.Errorf("/readyz before any push warns %q; want the suite's missing suite_ticket named", ws)
	}
	if got := suiteTicketUsable(t, e.addr, s); got != 0 {
		t.Errorf("wxtoken_platform_ticket_usable before any push = %v, want 0", got)
	}
	if st := e.fake.Stats(s.SuiteID); st.SuiteTokenCalls != 0 {
		t.Errorf("get_suite_token called %d times without a ticket", st.SuiteTokenCalls)
	}

	// URL verification: WeCom GETs the command callback with an
	// encrypted echostr, and wants the plaintext back, alone. The suite's
	// pushes are sealed for the suite id; the echostr for the provider's
	// corpid, which the suite's configuration does not hold. Either is
	// answered.
	const echo = "1616140317555161061"
	for _, receiver := range []string{suiteProviderCorp, s.SuiteID} {
		c, err := callback.NewCrypter(s.Token, s.EncodingAESKey, receiver)
		if err != nil {
			t.Fatal(err)
		}
		q := suiteVerifyQuery(t, c, s.Token, time.Now(), echo)
		if status, body := suiteGet(t, "http://"+e.addr+"/callback/suite/"+s.SuiteID+"?"+q.Encode()); status != 200 || body != echo {
			t.Fatalf("URL verification, echostr sealed for %s: %d %q, want 200 %q", receiver, status, body, echo)
		}
	}

	// The ticket push buys the suite token; the gap is gone.
	e.suitePushTo(s, nil)
	if _, err := e.fake.PushSuiteTicket(ctx, s.SuiteID); err != nil {
		t.Fatalf("suite_ticket push not acknowledged: %v", err)
	}
	st := awaitToken(t, e.hc, e.addr, s.SuiteID, 20*time.Millisecond, 5*time.Second, nil)
	if info, ok := e.fake.TokenInfo(st.AccessToken); !ok || info.Account != s.SuiteID {
		t.Errorf("the suite's served token is not a suite_access_token of %s: %+v, %v", s.SuiteID, info, ok)
	}
	if ws := suiteReadyWarnings(t, e.addr); suiteWarns(ws, s) {
		t.Errorf("/readyz after the push still warns %q", ws)
	}
	if got := suiteTicketUsable(t, e.addr, s); got != 1 {
		t.Errorf("wxtoken_platform_ticket_usable after the push = %v, want 1", got)
	}

	// A corp installs the suite: "success" is answered (CreateAuth
	// returns no error) once its permanent code is stored.
	if _, err := e.fake.CreateAuth(ctx, s.SuiteID, suiteCorp1); err != nil {
		t.Fatalf("create_auth not acknowledged: %v", err)
	}
	corp := suiteCorpID(s, suiteCorp1)
	if got, want := suiteStoredState(t, e.m, corp), e.fake.SuitePermanentCode(s.SuiteID, suiteCorp1); got == "" || got != want {
		t.Errorf("stored permanent code of %s is not WeCom's", corp)
	}
	tok := awaitToken(t, e.hc, e.addr, corp, 20*time.Millisecond, 5*time.Second, nil)
	e.suiteLive(t, corp, tok.AccessToken)
	if info, ok := e.fake.TokenInfo(tok.AccessToken); !ok || info.Account != suiteCorpID(s, suiteCorp1) {
		t.Errorf("%s served a token that is not its corp's: %+v", corp, info)
	}

	// The corp's JS-SDK tickets: its jsapi ticket (wx.config) and its
	// application's agent_config ticket (wx.agentConfig), both fetched
	// with the corp token.
	for _, typ := range []string{wxtest.TicketJSAPI, wxtest.TicketAgent} {
		status, ticket := e.suiteJSTicket(t, corp, typ)
		info, known := e.fake.LookupTicket(ticket)
		switch {
		case status != 200:
			t.Errorf("%s ticket of %s: status %d", typ, corp, status)
		case !known || info.Key.Account != suiteCorp1 || info.Key.Type != typ || !time.Now().Before(info.Expires):
			t.Errorf("%s ticket of %s is not a live one of the corp: %+v (known %v)", typ, corp, info, known)
		case typ == wxtest.TicketAgent && info.Key.App == "":
			t.Errorf("agent_config ticket of %s names no agent: %+v", corp, info.Key)
		}
	}

	// Refreshed ahead of expiry: with 5 s tokens, two more get_corp_token
	// calls within the test, and no token handed out ever fails at WeCom.
	acct := suiteCorpID(s, suiteCorp1)
	first := e.fake.Stats(acct).CorpTokenCalls
	seen := map[string]bool{tok.AccessToken: true}
	for end := time.Now().Add(15 * time.Second); e.fake.Stats(acct).CorpTokenCalls < first+2; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("get_corp_token calls %d → %d in 15 s of 5 s tokens: not refreshed ahead of expiry", first, e.fake.Stats(acct).CorpTokenCalls)
		}
		status, tr, err := askToken(ctx, e.hc, e.addr, corp)
		if err != nil || status != 200 {
			t.Fatalf("%s while refreshing: %d %v", corp, status, err)
		}
		e.suiteLive(t, corp, tr.AccessToken)
		seen[tr.AccessToken] = true
	}
	if stats := e.fake.Stats(acct); stats.DeadUses != 0 || len(seen) < 2 {
		t.Errorf("corp stats %+v, %d tokens served: want no dead use and the refreshed token served", stats, len(seen))
	}

	// The corp removes the suite: its token is refused with 410 revoked
	// from the push on, and never fetched again.
	if err := e.fake.CancelAuth(ctx, s.SuiteID, suiteCorp1); err != nil {
		t.Fatalf("cancel_auth not acknowledged: %v", err)
	}
	cancelled, callsAtCancel := time.Now(), e.fake.Stats(acct).CorpTokenCalls
	suiteRevoked(t, e.addr, corp)
	for _, typ := range []string{wxtest.TicketJSAPI, wxtest.TicketAgent} {
		if status, _ := e.suiteJSTicket(t, corp, typ); status != http.StatusGone {
			t.Errorf("%s ticket of %s after cancel_auth: %d, want 410", typ, corp, status)
		}
	}

	// Import: a corp carried over with its permanent code is served; an
	// entry in a third-party platform's shape is refused whole.
	code, err := e.fake.GrantSuite(s.SuiteID, suiteCorp2)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/components/" + s.SuiteID + "/authorizers"
	bad := fmt.Sprintf(`{"authorizers":[{"auth_corpid":%q,"permanent_code":%q},{"authorizer_appid":"wxauth01","authorizer_refresh_token":"r"}]}`, suiteCorp2, code)
	if status, body := keyCall(t, e.addr, "POST", path, clientKey, bad); status != 400 || !strings.Contains(body, "auth_corpid") {
		t.Errorf("import with a platform-shaped entry: %d %s, want 400 naming auth_corpid", status, body)
	}
	if _, err := e.m.tokens.Snapshot(suiteCorpID(s, suiteCorp2)); err == nil {
		t.Error("a refused import added its valid entry")
	}
	status, body := keyCall(t, e.addr, "POST", path, clientKey, fmt.Sprintf(`{"authorizers":[{"auth_corpid":%q,"permanent_code":%q}]}`, suiteCorp2, code))
	want := fmt.Sprintf(`{"authorizers":[{"auth_corpid":%q,"result":"imported"}],"imported":1,"replaced":0,"skipped_existing":0}`, suiteCorp2)
	if status != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("import: %d %s, want 200 %s", status, body, want)
	}
	imported := suiteCorpID(s, suiteCorp2)
	e.suiteLive(t, imported, awaitToken(t, e.hc, e.addr, imported, 20*time.Millisecond, 5*time.Second, nil).AccessToken)
	var page authorizerPage
	status, body = keyCall(t, e.addr, "GET", path, clientKey, "")
	if status != 200 || json.Unmarshal([]byte(body), &page) != nil {
		t.Fatalf("listing: %d %s", status, body)
	}
	states := map[string]string{}
	for _, a := range page.Authorizers {
		if a.Kind != "authcorp" {
			t.Errorf("listed %s of kind %q, want authcorp", a.ID, a.Kind)
		}
		states[a.ID] = a.State
	}
	if want := map[string]string{corp: "revoked", imported: "ok"}; !maps.Equal(states, want) {
		t.Errorf("listing %v, want %v", states, want)
	}

	// The provider's token is what get_provider_token answers: WeCom
	// answers the same one while it is valid.
	pt := awaitToken(t, e.hc, e.addr, suiteProviderCorp, 20*time.Millisecond, 5*time.Second, nil)
	if got, err := e.wc.ProviderToken(ctx, suiteProviderCorp, suiteProviderSecret); err != nil || got.Value != pt.AccessToken {
		t.Errorf("provider token served %q, get_provider_token answers %q (%v)", pt.AccessToken, got.Value, err)
	}

	// A custom-developed app's corp: its token comes from gettoken with
	// the permanent code as the corp's app secret, never from
	// get_corp_token.
	dk := suiteCustomApp
	e.suitePushTo(dk, nil)
	if _, err := e.fake.PushSuiteTicket(ctx, dk.SuiteID); err != nil {
		t.Fatalf("custom app suite_ticket push: %v", err)
	}
	awaitToken(t, e.hc, e.addr, dk.SuiteID, 20*time.Millisecond, 5*time.Second, nil)
	if _, err := e.fake.CreateAuth(ctx, dk.SuiteID, suiteCorp3); err != nil {
		t.Fatalf("custom app create_auth: %v", err)
	}
	dkCorp := suiteCorpID(dk, suiteCorp3)
	e.suiteLive(t, dkCorp, awaitToken(t, e.hc, e.addr, dkCorp, 20*time.Millisecond, 5*time.Second, nil).AccessToken)
	if st := e.fake.Stats(dkCorp); st.WeComCalls < 1 || st.CorpTokenCalls != 0 {
		t.Errorf("custom app corp stats %+v: want gettoken calls and no get_corp_token", st)
	}

	// The removed corp stays refused for longer than a token's life
	// after its removal, and is never fetched again.
	for time.Since(cancelled) < 6*time.Second {
		suiteRevoked(t, e.addr, corp)
		time.Sleep(250 * time.Millisecond)
	}
	if got := e.fake.Stats(acct).CorpTokenCalls; got != callsAtCancel {
		t.Errorf("the removed corp's token was fetched %d times after cancel_auth", got-callsAtCancel)
	}

	// Until the corp installs the suite again: a new create_auth brings a
	// new permanent code, and the corp is served again.
	if _, err := e.fake.CreateAuth(ctx, s.SuiteID, suiteCorp1); err != nil {
		t.Fatalf("create_auth after cancel_auth not acknowledged: %v", err)
	}
	e.suiteLive(t, corp, awaitToken(t, e.hc, e.addr, corp, 20*time.Millisecond, 5*time.Second, nil).AccessToken)
}

// suiteRevoked fails the test unless id is answered 410 revoked.
func suiteRevoked(t *testing.T, addr, id string) {
	t.Helper()
	status, body := keyCall(t, addr, "GET", "/v1/tokens/"+id, clientKey, "")
	if status != http.StatusGone || !strings.Contains(body, `"revoked"`) {
		t.Errorf("%s after cancel_auth: %d %s, want 410 revoked", id, status, body)
	}
}

// suiteStoredState is the durable state (a corp's permanent code) stored
// for credential id in m's store.
func suiteStoredState(t *testing.T, m *Main, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ent, err := m.store.Get(ctx, "token/"+id)
	if err != nil {
		t.Fatalf("stored %s: %v", id, err)
	}
	rec, err := token.DecodeStored(ent.Value)
	if err != nil {
		t.Fatal(err)
	}
	return rec.State
}
