package wxtest

import (
	"net/http"
	"testing"
	"time"
)

func TestStableSameToken(t *testing.T) {
	e := newEnv(t, Config{})
	first := e.stable(appID, appSecret, false)
	tok := mustToken(t, first)
	if first.ExpiresIn != 7200 {
		t.Errorf("first expires_in = %d, want 7200", first.ExpiresIn)
	}
	e.clk.Advance(time.Hour)
	again := e.stable(appID, appSecret, false)
	if again.AccessToken != tok {
		t.Errorf("a normal call an hour later returned a different token")
	}
	if again.ExpiresIn != 3600 {
		t.Errorf("expires_in an hour later = %d, want 3600", again.ExpiresIn)
	}

	// The families are isolated: a classic call neither returns nor
	// disturbs the stable token.
	classic := mustToken(t, e.classic(appID, appSecret))
	if classic == tok {
		t.Errorf("classic call returned the stable token")
	}
	if got := e.stable(appID, appSecret, false).AccessToken; got != tok {
		t.Errorf("stable token changed after a classic call")
	}
	if st := e.f.Stats(appID); st.StableCalls != 3 || st.ClassicCalls != 1 || st.Issued != 2 {
		t.Errorf("Stats = %+v, want 3 stable calls, 1 classic call, 2 issued", st)
	}
}

func TestStableRenewal(t *testing.T) {
	e := newEnv(t, Config{})
	old := mustToken(t, e.stable(appID, appSecret, false))

	// Just outside the renewal window: still the same token.
	e.clk.Advance(7200*time.Second - 5*time.Minute - time.Second)
	if r := e.stable(appID, appSecret, false); r.AccessToken != old || r.ExpiresIn != 301 {
		t.Fatalf("outside the window: token changed or expires_in %d, want the same token and 301", r.ExpiresIn)
	}

	// Inside it: a new token, while the old one lives out its lifetime.
	e.clk.Advance(2 * time.Second)
	r := e.stable(appID, appSecret, false)
	renewed := mustToken(t, r)
	if renewed == old || r.ExpiresIn != 7200 {
		t.Fatalf("inside the window: want a new token with expires_in 7200, got expires_in %d", r.ExpiresIn)
	}
	e.clk.Advance(4 * time.Minute)
	if got := e.use(old); got != 0 {
		t.Errorf("old token before its own expiry: %d, want 0", got)
	}
	if got := e.stable(appID, appSecret, false).AccessToken; got != renewed {
		t.Errorf("renewed token was not kept")
	}
	e.clk.Advance(time.Minute)
	if got := e.use(old); got != codeTokenExpired {
		t.Errorf("old token after its expiry: %d, want %d", got, codeTokenExpired)
	}
	if got := e.use(renewed); got != 0 {
		t.Errorf("renewed token: %d, want 0", got)
	}
}

func TestStableRenewBeforeConfig(t *testing.T) {
	e := newEnv(t, Config{Lifetime: 100 * time.Second, StableRenewBefore: 10 * time.Second})
	tok := mustToken(t, e.stable(appID, appSecret, false))
	e.clk.Advance(89 * time.Second)
	if got := e.stable(appID, appSecret, false).AccessToken; got != tok {
		t.Errorf("11 s left with a 10 s window: token changed")
	}
	e.clk.Advance(time.Second)
	if got := e.stable(appID, appSecret, false).AccessToken; got == tok {
		t.Errorf("10 s left with a 10 s window: token kept")
	}
}

func TestStableForce(t *testing.T) {
	e := newEnv(t, Config{})
	old := mustToken(t, e.stable(appID, appSecret, false))
	forced := mustToken(t, e.stable(appID, appSecret, true))
	if forced == old {
		t.Fatalf("force_refresh returned the same token")
	}
	if got := e.stable(appID, appSecret, false).AccessToken; got != forced {
		t.Errorf("normal call after a force did not return the forced token")
	}

	// The forced-out token overlaps like a classic one.
	e.clk.Advance(5*time.Minute - time.Second)
	if got := e.use(old); got != 0 {
		t.Errorf("forced-out token within the overlap: %d, want 0", got)
	}
	e.clk.Advance(time.Second)
	if got := e.use(old); got != codeInvalidCredential {
		t.Errorf("forced-out token after the overlap: %d, want %d", got, codeInvalidCredential)
	}

	// At least 30 s apart.
	mustToken(t, e.stable(appID, appSecret, true))
	e.clk.Advance(29 * time.Second)
	if r := e.stable(appID, appSecret, true); r.ErrCode != codeMinuteQuota {
		t.Errorf("force 29 s after the last: errcode %d, want %d", r.ErrCode, codeMinuteQuota)
	}
	e.clk.Advance(time.Second)
	mustToken(t, e.stable(appID, appSecret, true))

	st := e.f.Stats(appID)
	want := Stats{StableCalls: 6, StableForced: 4, Issued: 4, GoodUses: 1, DeadUses: 1}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

func TestStableForceDailyLimit(t *testing.T) {
	e := newEnv(t, Config{})
	e.clk.Set(time.Date(2025, 3, 10, 8, 0, 0, 0, beijing))
	for i := range 20 {
		if r := e.stable(appID, appSecret, true); r.ErrCode != 0 {
			t.Fatalf("force %d: errcode %d", i+1, r.ErrCode)
		}
		e.clk.Advance(time.Minute)
	}
	r := e.stable(appID, appSecret, true)
	if r.ErrCode != codeDailyQuota {
		t.Fatalf("21st force: errcode %d, want %d", r.ErrCode, codeDailyQuota)
	}
	if r.ErrMsg != "reach max api daily quota limit" {
		t.Errorf("errmsg = %q", r.ErrMsg)
	}
	// Normal calls are unaffected, and a new Beijing day allows forcing again.
	mustToken(t, e.stable(appID, appSecret, false))
	e.clk.Set(time.Date(2025, 3, 11, 0, 0, 0, 0, beijing))
	mustToken(t, e.stable(appID, appSecret, true))
}

func TestStableErrors(t *testing.T) {
	good := `{"grant_type":"client_credential","appid":"` + appID + `","secret":"` + appSecret + `"}`
	tests := []struct {
		name   string
		setup  func(*Fake)
		method string
		body   string
		code   int
		msg    string
	}{
		{"GET", nil, "GET", good, codeRequireMethod, "require POST method"},
		{"malformed JSON", nil, "POST", `{"appid":`, codeDataFormat, "data format error"},
		{"force_refresh not a bool", nil, "POST", `{"grant_type":"client_credential","appid":"` + appID + `","secret":"` + appSecret + `","force_refresh":"yes"}`, codeDataFormat, ""},
		{"empty body", nil, "POST", "", codeInvalidGrantType, ""},
		{"wrong grant_type", nil, "POST", `{"grant_type":"x","appid":"` + appID + `","secret":"` + appSecret + `"}`, codeInvalidGrantType, ""},
		{"unknown appid", nil, "POST", `{"grant_type":"client_credential","appid":"wx-nobody","secret":"s"}`, codeInvalidAppID, ""},
		{"wrong secret", nil, "POST", `{"grant_type":"client_credential","appid":"` + appID + `","secret":"nope"}`, codeInvalidSecret, ""},
		{"frozen", func(f *Fake) { f.FreezeSecret(appID) }, "POST", good, codeSecretFrozen, ""},
		{"whitelist", func(f *Fake) { f.SetWhitelist("10.0.0.1") }, "POST", good, codeIPNotWhitelisted, "invalid ip 127.0.0.1, not in whitelist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			if tt.setup != nil {
				tt.setup(e.f)
			}
			r := e.do(tt.method, "/cgi-bin/stable_token", nil, tt.body)
			if r.Status != http.StatusOK || r.ErrCode != tt.code || r.AccessToken != "" {
				t.Fatalf("got status %d body %s, want HTTP 200 errcode %d", r.Status, r.Body, tt.code)
			}
			if tt.msg != "" && r.ErrMsg != tt.msg {
				t.Errorf("errmsg = %q, want %q", r.ErrMsg, tt.msg)
			}
		})
	}
}
