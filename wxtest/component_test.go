package wxtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The third-party platform every component test starts with, and an
// account that authorizes it.
const (
	componentAppID  = "wx00000000000000c1"
	componentSecret = "component-secret"
	authorizerAppID = "wx00000000000000a1"
)

var testComponent = Component{
	AppID:          componentAppID,
	Secret:         componentSecret,
	Token:          "push-token",
	EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}

// compReply is the union of the component endpoints' answers.
type compReply struct {
	Status               int    `json:"-"`
	Body                 string `json:"-"`
	ErrCode              int    `json:"errcode"`
	ErrMsg               string `json:"errmsg"`
	ComponentAccessToken string `json:"component_access_token"`
	PreAuthCode          string `json:"pre_auth_code"`
	AccessToken          string `json:"authorizer_access_token"`
	RefreshToken         string `json:"authorizer_refresh_token"`
	ExpiresIn            int    `json:"expires_in"`
	Info                 struct {
		AuthorizerAppID string `json:"authorizer_appid"`
		AccessToken     string `json:"authorizer_access_token"`
		ExpiresIn       int    `json:"expires_in"`
		RefreshToken    string `json:"authorizer_refresh_token"`
		FuncInfo        []struct {
			Category struct {
				ID int `json:"id"`
			} `json:"funcscope_category"`
		} `json:"func_info"`
	} `json:"authorization_info"`
}

// post calls a component endpoint with a JSON body and, when token is set,
// ?component_access_token=token.
func (c caller) post(path, token string, body map[string]string) compReply {
	c.t.Helper()
	var q url.Values
	if token != "" {
		q = url.Values{"component_access_token": {token}}
	}
	data, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.decode(c.do(http.MethodPost, "/cgi-bin/component/"+path, q, string(data)))
}

func (c caller) decode(r reply) compReply {
	c.t.Helper()
	var cr compReply
	if r.Status == http.StatusOK && strings.HasPrefix(r.Body, "{") {
		if err := json.Unmarshal([]byte(r.Body), &cr); err != nil {
			c.t.Fatalf("decoding %s: %v", r.Body, err)
		}
	}
	cr.Status, cr.Body = r.Status, r.Body
	return cr
}

func (c caller) startPush(appid, secret string) compReply {
	c.t.Helper()
	return c.post("api_start_push_ticket", "", map[string]string{"component_appid": appid, "component_secret": secret})
}

func (c caller) componentToken(appid, secret, ticket string) compReply {
	c.t.Helper()
	return c.post("api_component_token", "", map[string]string{
		"component_appid": appid, "component_appsecret": secret, "component_verify_ticket": ticket,
	})
}

func (c caller) preAuthCode(token, appid string) compReply {
	c.t.Helper()
	return c.post("api_create_preauthcode", token, map[string]string{"component_appid": appid})
}

func (c caller) queryAuth(token, appid, code string) compReply {
	c.t.Helper()
	return c.post("api_query_auth", token, map[string]string{"component_appid": appid, "authorization_code": code})
}

func (c caller) authorizerToken(token, appid, authorizer, refresh string) compReply {
	c.t.Helper()
	return c.post("api_authorizer_token", token, map[string]string{
		"component_appid": appid, "authorizer_appid": authorizer, "authorizer_refresh_token": refresh,
	})
}

// compEnv is an env with testComponent added and its pushes going to a
// receiver over loopback HTTP.
type compEnv struct {
	env
	recv *receiver
}

func newCompEnv(t *testing.T, cfg Config) compEnv {
	e := newEnv(t, cfg)
	e.f.AddComponent(testComponent)
	recv := newReceiver(testComponent)
	ts := httptest.NewServer(recv)
	t.Cleanup(ts.Close)
	// Registered after ts.Close, so it runs before it: background pushes
	// stop while their target is still up.
	t.Cleanup(e.f.Close)
	e.f.SetPushTarget(componentAppID, ts.URL+"/wechat/component?platform=1", ts.Client())
	return compEnv{env: e, recv: recv}
}

// ticket pushes a new ticket and checks that the receiver got it.
func (e compEnv) ticket() string {
	e.t.Helper()
	ticket, err := e.f.PushTicket(context.Background(), componentAppID)
	if err != nil {
		e.t.Fatalf("PushTicket: %v", err)
	}
	if got := e.recv.last().ComponentVerifyTicket; got != ticket {
		e.t.Fatalf("receiver holds ticket %q, PushTicket returned %q", got, ticket)
	}
	return ticket
}

// componentAccess fetches a component token with a freshly pushed ticket.
func (e compEnv) componentAccess() string {
	e.t.Helper()
	r := e.componentToken(componentAppID, componentSecret, e.ticket())
	if r.ErrCode != 0 || r.ComponentAccessToken == "" {
		e.t.Fatalf("component token: %s", r.Body)
	}
	return r.ComponentAccessToken
}

func TestComponentToken(t *testing.T) {
	e := newCompEnv(t, Config{})
	ticket := e.ticket()

	first := e.componentToken(componentAppID, componentSecret, ticket)
	if first.ErrCode != 0 || first.ComponentAccessToken == "" || first.ExpiresIn != 7200 {
		t.Fatalf("component token: %s", first.Body)
	}
	second := e.componentToken(componentAppID, componentSecret, ticket)
	if second.ComponentAccessToken == first.ComponentAccessToken {
		t.Fatalf("second call repeated the token; each call should issue a new one")
	}
	if got := e.use(first.ComponentAccessToken); got != 0 {
		t.Errorf("replaced component token inside the overlap: %d, want 0", got)
	}
	e.clk.Advance(5 * time.Minute)
	if got := e.use(first.ComponentAccessToken); got != codeInvalidCredential {
		t.Errorf("replaced component token after the overlap: %d, want %d", got, codeInvalidCredential)
	}
	if got := e.use(second.ComponentAccessToken); got != 0 {
		t.Errorf("current component token: %d, want 0", got)
	}
	e.clk.Advance(2 * time.Hour)
	if got := e.use(second.ComponentAccessToken); got != codeTokenExpired {
		t.Errorf("component token after its lifetime: %d, want %d", got, codeTokenExpired)
	}

	got := e.f.Stats(componentAppID)
	want := Stats{ComponentTokenCalls: 2, Issued: 2, GoodUses: 2, DeadUses: 2, Pushes: 1}
	if got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestComponentTokenErrors(t *testing.T) {
	e := newCompEnv(t, Config{})
	ticket := e.ticket()
	tests := []struct {
		name, appid, secret, ticket string
		code                        int
	}{
		{"unknown component", "wx-unknown", componentSecret, ticket, codeInvalidAppID},
		{"an app is not a component", appID, appSecret, ticket, codeInvalidAppID},
		{"wrong secret", componentAppID, "nope", ticket, codeInvalidSecret},
		{"ticket never pushed", componentAppID, componentSecret, "ticket@@@forged", codeTicketInvalid},
		{"no ticket", componentAppID, componentSecret, "", codeTicketInvalid},
	}
	for _, tt := range tests {
		r := e.componentToken(tt.appid, tt.secret, tt.ticket)
		if r.ErrCode != tt.code || r.ComponentAccessToken != "" {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.code)
		}
	}

	get := e.decode(e.do(http.MethodGet, "/cgi-bin/component/api_component_token", nil, ""))
	if get.ErrCode != codeRequireMethod {
		t.Errorf("GET: %s, want errcode %d", get.Body, codeRequireMethod)
	}
	bad := e.decode(e.do(http.MethodPost, "/cgi-bin/component/api_component_token", nil, "{"))
	if bad.ErrCode != codeDataFormat {
		t.Errorf("malformed body: %s, want errcode %d", bad.Body, codeDataFormat)
	}

	e.f.FreezeSecret(componentAppID)
	if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != codeSecretFrozen {
		t.Errorf("frozen secret: %s, want errcode %d", r.Body, codeSecretFrozen)
	}
	e.f.AddComponent(testComponent)
	if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != 0 {
		t.Errorf("after AddComponent again: %s", r.Body)
	}
}

// TestTicketValidity checks the documented ticket rule: a ticket works for
// 12 hours from its push while it is the current or the previous one.
func TestTicketValidity(t *testing.T) {
	e := newCompEnv(t, Config{})
	call := func(ticket string) int {
		t.Helper()
		return e.componentToken(componentAppID, componentSecret, ticket).ErrCode
	}

	first := e.ticket()
	e.clk.Advance(10 * time.Minute)
	second := e.ticket()
	if got := call(first); got != 0 {
		t.Errorf("previous ticket: %d, want 0", got)
	}
	e.clk.Advance(10 * time.Minute)
	third := e.ticket()
	if got := call(first); got != codeTicketExpired {
		t.Errorf("ticket superseded twice: %d, want %d", got, codeTicketExpired)
	}
	if got := call(second); got != 0 {
		t.Errorf("previous ticket: %d, want 0", got)
	}

	e.clk.Advance(12*time.Hour - time.Second)
	if got := call(third); got != 0 {
		t.Errorf("current ticket just inside 12 h: %d, want 0", got)
	}
	e.clk.Advance(time.Second)
	if got := call(third); got != codeTicketExpired {
		t.Errorf("current ticket at 12 h: %d, want %d", got, codeTicketExpired)
	}
}

func TestComponentDailyLimitAndFault(t *testing.T) {
	e := newCompEnv(t, Config{DailyLimit: 2})
	ticket := e.ticket()

	e.f.SetFault(componentAppID, Fault{ErrCode: codeSystemBusy, Count: 1})
	if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != codeSystemBusy {
		t.Errorf("faulted call: %s, want errcode %d", r.Body, codeSystemBusy)
	}
	for i := range 2 {
		if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != 0 {
			t.Fatalf("call %d: %s", i+1, r.Body)
		}
	}
	if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != codeDailyQuota {
		t.Errorf("past the daily limit: %s, want errcode %d", r.Body, codeDailyQuota)
	}
	if got := e.f.Stats(componentAppID); got.ComponentTokenCalls != 4 || got.Issued != 2 {
		t.Errorf("Stats = %+v, want 4 calls and 2 issued (the fault uses no quota)", got)
	}
}

func TestComponentAppIDAtTokenEndpoints(t *testing.T) {
	e := newCompEnv(t, Config{})
	if r := e.classic(componentAppID, componentSecret); r.ErrCode != codeComponentAppID {
		t.Errorf("classic token for a component: %s, want errcode %d", r.Body, codeComponentAppID)
	}
	if r := e.stable(componentAppID, componentSecret, false); r.ErrCode != codeComponentAppID {
		t.Errorf("stable token for a component: %s, want errcode %d", r.Body, codeComponentAppID)
	}
}

func TestComponentWhitelist(t *testing.T) {
	e := newCompEnv(t, Config{})
	ticket := e.ticket()
	tok := e.componentAccess()
	e.f.SetWhitelist("10.0.0.1")
	if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != codeComponentIP || !strings.Contains(r.ErrMsg, "127.0.0.1") {
		t.Errorf("component token from an unlisted IP: %s, want errcode %d naming the IP", r.Body, codeComponentIP)
	}
	if r := e.preAuthCode(tok, componentAppID); r.ErrCode != codeComponentIP {
		t.Errorf("pre-auth code from an unlisted IP: %s, want errcode %d", r.Body, codeComponentIP)
	}
	if r := e.startPush(componentAppID, componentSecret); r.ErrCode != codeComponentIP {
		t.Errorf("start push from an unlisted IP: %s, want errcode %d", r.Body, codeComponentIP)
	}
	e.f.SetWhitelist("127.0.0.1")
	if r := e.preAuthCode(tok, componentAppID); r.ErrCode != 0 {
		t.Errorf("pre-auth code from a listed IP: %s", r.Body)
	}
}

// TestComponentTokenUse covers how component endpoints check the token they
// are called with.
func TestComponentTokenUse(t *testing.T) {
	e := newCompEnv(t, Config{})
	other := Component{AppID: "wx00000000000000c2", Secret: "s2", Token: "t2", EncodingAESKey: testComponent.EncodingAESKey}
	e.f.AddComponent(other)
	tok := e.componentAccess()
	appToken := mustToken(t, e.classic(appID, appSecret))

	pre := e.preAuthCode(tok, componentAppID)
	if pre.ErrCode != 0 || !strings.HasPrefix(pre.PreAuthCode, "preauthcode@@@") || pre.ExpiresIn != 1800 {
		t.Fatalf("pre-auth code: %s", pre.Body)
	}
	// The newer docs' ?access_token= works as well.
	q := url.Values{"access_token": {tok}}
	if r := e.decode(e.do(http.MethodPost, "/cgi-bin/component/api_create_preauthcode", q, `{"component_appid":"`+componentAppID+`"}`)); r.ErrCode != 0 {
		t.Errorf("with ?access_token=: %s", r.Body)
	}

	tests := []struct {
		name, token, appid string
		code               int
	}{
		{"no token", "", componentAppID, codeTokenMissing},
		{"garbage token", "xyz", componentAppID, codeInvalidToken},
		{"an app's token", appToken, componentAppID, codeNeedComponentToken},
		{"another component's appid", tok, other.AppID, codeInvalidAppID},
	}
	for _, tt := range tests {
		if r := e.preAuthCode(tt.token, tt.appid); r.ErrCode != tt.code {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.code)
		}
	}

	e.clk.Advance(2 * time.Hour)
	if r := e.preAuthCode(tok, componentAppID); r.ErrCode != codeTokenExpired {
		t.Errorf("expired token: %s, want errcode %d", r.Body, codeTokenExpired)
	}
	got := e.f.Stats(componentAppID)
	// The call naming the other component counts there, not here; the
	// token was valid for it, so it is a good use all the same.
	if got.PreAuthCodeCalls != 6 || got.GoodUses != 3 || got.DeadUses != 1 {
		t.Errorf("Stats = %+v, want 6 pre-auth calls, 3 good uses, 1 dead use", got)
	}
}

func TestComponentString(t *testing.T) {
	for _, s := range []string{testComponent.String(), testComponent.GoString()} {
		if strings.Contains(s, componentSecret) || strings.Contains(s, testComponent.Token) || strings.Contains(s, testComponent.EncodingAESKey) {
			t.Errorf("Component prints a secret: %s", s)
		}
		if !strings.Contains(s, componentAppID) {
			t.Errorf("Component prints without its appid: %s", s)
		}
	}
}
