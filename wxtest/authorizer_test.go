package wxtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
)

// authorize runs Authorize and returns the code, checking the pushed event.
func (e compEnv) authorize(authorizer string) (string, callback.Event) {
	e.t.Helper()
	code, err := e.f.Authorize(context.Background(), componentAppID, authorizer)
	if err != nil {
		e.t.Fatalf("Authorize: %v", err)
	}
	ev := e.recv.last()
	if ev.InfoType != callback.InfoAuthorized || ev.AuthorizerAppID != authorizer || ev.AuthorizationCode != code {
		e.t.Fatalf("pushed %+v, want authorized %s with code %s", ev, authorizer, code)
	}
	return code, ev
}

// TestAuthorizationFlow goes the whole way: ticket, component token,
// pre-auth code, authorization, code exchange, refreshes with rotation,
// and withdrawal.
func TestAuthorizationFlow(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctok := e.componentAccess()
	pre := e.preAuthCode(ctok, componentAppID).PreAuthCode

	code, ev := e.authorize(authorizerAppID)
	if ev.PreAuthCode != pre {
		t.Errorf("event PreAuthCode %q, want the one api_create_preauthcode gave: %q", ev.PreAuthCode, pre)
	}
	if ev.AuthorizationCodeExpiredTime != morning.Unix()+3600 || ev.CreateTime != morning.Unix() {
		t.Errorf("event CreateTime %d, AuthorizationCodeExpiredTime %d; want %d and an hour later",
			ev.CreateTime, ev.AuthorizationCodeExpiredTime, morning.Unix())
	}

	auth := e.queryAuth(ctok, componentAppID, code)
	info := auth.Info
	if auth.ErrCode != 0 || info.AuthorizerAppID != authorizerAppID || info.AccessToken == "" ||
		info.ExpiresIn != 7200 || info.RefreshToken == "" || len(info.FuncInfo) == 0 || info.FuncInfo[0].Category.ID == 0 {
		t.Fatalf("query_auth: %s", auth.Body)
	}
	if got := e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID); got != info.RefreshToken {
		t.Errorf("AuthorizerRefreshToken = %q, want %q", got, info.RefreshToken)
	}
	if r := e.queryAuth(ctok, componentAppID, code); r.ErrCode != codeAuthCodeInvalid {
		t.Errorf("code used twice: %s, want errcode %d", r.Body, codeAuthCodeInvalid)
	}
	if got := e.use(info.AccessToken); got != 0 {
		t.Errorf("authorizer token: %d, want 0", got)
	}

	// Rotation every second call: R1 is kept by call 1 and replaced by R2
	// on call 2; R1 keeps working until R2 is used.
	e.f.SetRefreshTokenRotation(componentAppID, 2)
	r1 := info.RefreshToken
	call := func(refresh string) compReply {
		t.Helper()
		return e.authorizerToken(ctok, componentAppID, authorizerAppID, refresh)
	}
	first := call(r1)
	if first.ErrCode != 0 || first.AccessToken == "" || first.RefreshToken != r1 || first.ExpiresIn != 7200 {
		t.Fatalf("refresh 1: %s", first.Body)
	}
	second := call(r1)
	r2 := second.RefreshToken
	if second.ErrCode != 0 || r2 == r1 || r2 == "" {
		t.Fatalf("refresh 2 should rotate: %s", second.Body)
	}
	if got := e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID); got != r2 {
		t.Errorf("AuthorizerRefreshToken = %q, want the new %q", got, r2)
	}
	if r := call(r1); r.ErrCode != 0 || r.RefreshToken != r2 {
		t.Errorf("old refresh token before the new one is used: %s, want success naming the new one", r.Body)
	}
	fourth := call(r2) // the new one used: R1 is gone; this call rotates again
	r3 := fourth.RefreshToken
	if fourth.ErrCode != 0 || r3 == r2 || r3 == r1 {
		t.Fatalf("refresh 4 should rotate: %s", fourth.Body)
	}
	if r := call(r1); r.ErrCode != codeRefreshInvalid {
		t.Errorf("old refresh token after the new one was used: %s, want errcode %d", r.Body, codeRefreshInvalid)
	}

	// Each refresh replaced the access token before it, which lives on for
	// the overlap.
	if got := e.use(first.AccessToken); got != 0 {
		t.Errorf("replaced authorizer token inside the overlap: %d, want 0", got)
	}
	e.clk.Advance(5 * time.Minute)
	if got := e.use(first.AccessToken); got != codeInvalidCredential {
		t.Errorf("replaced authorizer token after the overlap: %d, want %d", got, codeInvalidCredential)
	}
	if got := e.use(fourth.AccessToken); got != 0 {
		t.Errorf("current authorizer token: %d, want 0", got)
	}

	if err := e.f.Unauthorize(context.Background(), componentAppID, authorizerAppID); err != nil {
		t.Fatalf("Unauthorize: %v", err)
	}
	if ev := e.recv.last(); ev.InfoType != callback.InfoUnauthorized || ev.AuthorizerAppID != authorizerAppID {
		t.Errorf("pushed %+v, want unauthorized %s", ev, authorizerAppID)
	}
	for _, refresh := range []string{r2, r3} {
		if r := call(refresh); r.ErrCode != codeRefreshInvalid {
			t.Errorf("refresh token after Unauthorize: %s, want errcode %d", r.Body, codeRefreshInvalid)
		}
	}
	if got := e.use(fourth.AccessToken); got != codeInvalidCredential {
		t.Errorf("authorizer token after Unauthorize: %d, want %d", got, codeInvalidCredential)
	}
	if got := e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID); got != "" {
		t.Errorf("AuthorizerRefreshToken after Unauthorize = %q, want empty", got)
	}

	got := e.f.Stats(authorizerAppID)
	want := Stats{Issued: 5, GoodUses: 3, DeadUses: 2, AuthorizerTokenCalls: 7}
	if got != want {
		t.Errorf("authorizer Stats = %+v, want %+v", got, want)
	}
	comp := e.f.Stats(componentAppID)
	if comp.QueryAuthCalls != 2 || comp.AuthorizerTokenCalls != 7 || comp.PreAuthCodeCalls != 1 || comp.Pushes != 3 {
		t.Errorf("component Stats = %+v, want 2 query_auth, 7 authorizer_token, 1 pre-auth, 3 pushes", comp)
	}

	// A new authorization starts over with a new refresh token.
	code, _ = e.authorize(authorizerAppID)
	again := e.queryAuth(ctok, componentAppID, code)
	if again.ErrCode != 0 || slices.Contains([]string{r1, r2, r3}, again.Info.RefreshToken) {
		t.Errorf("query_auth after re-authorizing: %s, want a new refresh token", again.Body)
	}
}

func TestQueryAuthErrors(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctok := e.componentAccess()
	if r := e.queryAuth(ctok, componentAppID, "queryauthcode@@@forged"); r.ErrCode != codeAuthCodeInvalid {
		t.Errorf("unknown code: %s, want errcode %d", r.Body, codeAuthCodeInvalid)
	}

	expired, _ := e.authorize(authorizerAppID)
	e.clk.Advance(time.Hour - time.Second)
	fresh, _ := e.authorize("wx00000000000000a2")
	e.clk.Advance(time.Second)
	if r := e.queryAuth(ctok, componentAppID, expired); r.ErrCode != codeAuthCodeExpired {
		t.Errorf("code an hour old: %s, want errcode %d", r.Body, codeAuthCodeExpired)
	}
	if r := e.queryAuth(ctok, componentAppID, fresh); r.ErrCode != 0 {
		t.Errorf("fresh code: %s", r.Body)
	}

	pending, _ := e.authorize(authorizerAppID)
	if err := e.f.Unauthorize(context.Background(), componentAppID, authorizerAppID); err != nil {
		t.Fatal(err)
	}
	if r := e.queryAuth(ctok, componentAppID, pending); r.ErrCode != codeAuthCodeInvalid {
		t.Errorf("code of a withdrawn authorization: %s, want errcode %d", r.Body, codeAuthCodeInvalid)
	}
	if err := e.f.Unauthorize(context.Background(), componentAppID, authorizerAppID); err == nil {
		t.Errorf("Unauthorize twice: no error")
	}
}

// TestAuthorizerOfAnotherComponent checks that a refresh token works only
// for the component it was granted to.
func TestAuthorizerOfAnotherComponent(t *testing.T) {
	e := newCompEnv(t, Config{})
	other := Component{AppID: "wx00000000000000c2", Secret: "s2", Token: "t2", EncodingAESKey: testComponent.EncodingAESKey}
	e.f.AddComponent(other)
	otherRecv := newReceiver(other)
	e.f.SetPushTarget(other.AppID, "http://component-2.example/push", HandlerClient(otherRecv))
	ticket, err := e.f.PushTicket(context.Background(), other.AppID)
	if err != nil {
		t.Fatal(err)
	}
	otherTok := e.componentToken(other.AppID, other.Secret, ticket).ComponentAccessToken

	e.authorize(authorizerAppID)
	refresh := e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID)
	if r := e.authorizerToken(otherTok, other.AppID, authorizerAppID, refresh); r.ErrCode != codeRefreshInvalid {
		t.Errorf("refresh token through another component: %s, want errcode %d", r.Body, codeRefreshInvalid)
	}
	if r := e.authorizerToken(otherTok, componentAppID, authorizerAppID, refresh); r.ErrCode != codeInvalidAppID {
		t.Errorf("another component's token: %s, want errcode %d", r.Body, codeInvalidAppID)
	}
	if r := e.authorizerToken(e.componentAccess(), componentAppID, authorizerAppID, refresh); r.ErrCode != 0 {
		t.Errorf("through its own component: %s", r.Body)
	}
}

func TestUpdateAuthorization(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctx := context.Background()
	if _, err := e.f.UpdateAuthorization(ctx, componentAppID, authorizerAppID); err == nil {
		t.Errorf("UpdateAuthorization before Authorize: no error")
	}
	if n := len(e.recv.all()); n != 0 {
		t.Fatalf("failed UpdateAuthorization pushed %d events", n)
	}
	e.authorize(authorizerAppID)
	refresh := e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID)

	code, err := e.f.UpdateAuthorization(ctx, componentAppID, authorizerAppID)
	if err != nil {
		t.Fatal(err)
	}
	ev := e.recv.last()
	if ev.InfoType != callback.InfoUpdateAuthorized || ev.AuthorizationCode != code || ev.PreAuthCode == "" {
		t.Errorf("pushed %+v, want updateauthorized with code %s and a pre-auth code", ev, code)
	}
	r := e.queryAuth(e.componentAccess(), componentAppID, code)
	if r.ErrCode != 0 || r.Info.RefreshToken != refresh {
		t.Errorf("query_auth after an update: %s, want the same refresh token %s", r.Body, refresh)
	}
}

// TestAuthorizeWithoutTarget imports an authorizer the way a test that does
// not receive pushes would.
func TestAuthorizeWithoutTarget(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.AddComponent(testComponent)
	if _, err := e.f.Authorize(context.Background(), "wx-unknown", authorizerAppID); err == nil {
		t.Errorf("Authorize for an unknown component: no error")
	}
	if _, err := e.f.Authorize(context.Background(), componentAppID, ""); err == nil {
		t.Errorf("Authorize with no authorizer: no error")
	}
	code, err := e.f.Authorize(context.Background(), componentAppID, authorizerAppID)
	if !errors.Is(err, ErrNoPushTarget) || !strings.HasPrefix(code, "queryauthcode@@@") {
		t.Fatalf("Authorize without a target: %q, %v; want a code and ErrNoPushTarget", code, err)
	}
	if e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID) == "" {
		t.Errorf("no refresh token after Authorize without a target")
	}
	if got := e.f.Stats(componentAppID); got.Pushes != 1 || got.PushFailures != 1 {
		t.Errorf("Stats = %+v, want 1 push, failed", got)
	}
}

func TestAuthorizerTokenFault(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctok := e.componentAccess()
	e.authorize(authorizerAppID)
	refresh := e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID)

	e.f.SetFault(authorizerAppID, Fault{Status: 502, Count: 1})
	if r := e.authorizerToken(ctok, componentAppID, authorizerAppID, refresh); r.Status != 502 {
		t.Errorf("faulted authorizer: status %d, want 502", r.Status)
	}
	e.f.SetFault(componentAppID, Fault{ErrCode: codeSystemBusy, Count: 1})
	if r := e.authorizerToken(ctok, componentAppID, authorizerAppID, refresh); r.ErrCode != codeSystemBusy {
		t.Errorf("faulted component: %s, want errcode %d", r.Body, codeSystemBusy)
	}
	if r := e.authorizerToken(ctok, componentAppID, authorizerAppID, refresh); r.ErrCode != 0 {
		t.Errorf("after the faults: %s", r.Body)
	}
	if got := e.f.Stats(authorizerAppID); got.AuthorizerTokenCalls != 3 || got.Issued != 1 {
		t.Errorf("Stats = %+v, want 3 calls, 1 issued", got)
	}
}

// TestGrant: an authorization granted without a push gives a refresh
// token that api_authorizer_token accepts, pushes nothing, and replaces
// an earlier grant's refresh token.
func TestGrant(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctok := e.componentAccess()
	if _, err := e.f.Grant("wx-unknown", authorizerAppID); err == nil {
		t.Errorf("Grant for an unknown component: no error")
	}
	if _, err := e.f.Grant(componentAppID, ""); err == nil {
		t.Errorf("Grant with no authorizer: no error")
	}
	pushes := e.f.Stats(componentAppID).Pushes
	first, err := e.f.Grant(componentAppID, authorizerAppID)
	if err != nil || first != e.f.AuthorizerRefreshToken(componentAppID, authorizerAppID) {
		t.Fatalf("Grant = %q, %v; want the authorization's refresh token", first, err)
	}
	second, err := e.f.Grant(componentAppID, authorizerAppID)
	if err != nil || second == first {
		t.Fatalf("second Grant = %q, %v; want a new refresh token", second, err)
	}
	if r := e.authorizerToken(ctok, componentAppID, authorizerAppID, first); r.ErrCode != codeRefreshInvalid {
		t.Errorf("the replaced refresh token: %s, want errcode %d", r.Body, codeRefreshInvalid)
	}
	if r := e.authorizerToken(ctok, componentAppID, authorizerAppID, second); r.ErrCode != 0 {
		t.Errorf("the granted refresh token: %s", r.Body)
	}
	if got := e.f.Stats(componentAppID).Pushes; got != pushes {
		t.Errorf("Grant pushed: %d pushes, want %d", got, pushes)
	}
}
