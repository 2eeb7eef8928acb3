package wxtest

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestWeComToken(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.AddCorp(corpID, "second-app-secret")

	r := e.wecom(corpID, corpSecret)
	first := mustToken(t, r)
	if r.ErrMsg != "ok" || r.ExpiresIn != 7200 {
		t.Errorf("answer %s: want errcode 0, errmsg ok, expires_in 7200", r.Body)
	}
	other := mustToken(t, e.wecom(corpID, "second-app-secret"))
	second := mustToken(t, e.wecom(corpID, corpSecret))
	if first == second || first == other || second == other {
		t.Fatalf("tokens repeat")
	}

	e.clk.Advance(5 * time.Minute)
	if got := e.use(first); got != codeInvalidCredential {
		t.Errorf("replaced token after the overlap: %d, want %d", got, codeInvalidCredential)
	}
	// Each application secret has its own token: the second call for the
	// first secret did not replace the other application's token.
	if got := e.use(other); got != 0 {
		t.Errorf("other application's token: %d, want 0", got)
	}
	if got := e.use(second); got != 0 {
		t.Errorf("current token: %d, want 0", got)
	}
	if st := e.f.Stats(corpID); st.WeComCalls != 3 || st.Issued != 3 {
		t.Errorf("Stats = %+v, want 3 WeCom calls and 3 issued", st)
	}
}

func TestWeComErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*Fake)
		method string
		query  url.Values
		code   int
	}{
		{"unknown corpid", nil, "GET", url.Values{"corpid": {"ww-nobody"}, "corpsecret": {corpSecret}}, codeInvalidAppID},
		{"appid as corpid", nil, "GET", url.Values{"corpid": {appID}, "corpsecret": {appSecret}}, codeInvalidAppID},
		{"wrong secret", nil, "GET", url.Values{"corpid": {corpID}, "corpsecret": {"nope"}}, codeInvalidCredential},
		{"whitelist", func(f *Fake) { f.SetWhitelist("10.0.0.1") }, "GET", url.Values{"corpid": {corpID}, "corpsecret": {corpSecret}}, codeWeComIPDenied},
		{"POST", nil, "POST", url.Values{"corpid": {corpID}, "corpsecret": {corpSecret}}, codeRequireMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			if tt.setup != nil {
				tt.setup(e.f)
			}
			r := e.do(tt.method, "/cgi-bin/gettoken", tt.query, "")
			if r.Status != http.StatusOK || r.ErrCode != tt.code || r.AccessToken != "" {
				t.Fatalf("got status %d body %s, want HTTP 200 errcode %d", r.Status, r.Body, tt.code)
			}
		})
	}
}

func TestWeComQuota(t *testing.T) {
	e := newEnv(t, Config{DailyLimit: 2})
	e.f.AddCorp(corpID, "second-app-secret")
	mustToken(t, e.wecom(corpID, corpSecret))
	mustToken(t, e.wecom(corpID, "second-app-secret"))
	if r := e.wecom(corpID, corpSecret); r.ErrCode != codeDailyQuota {
		t.Fatalf("third call of the day: errcode %d, want %d", r.ErrCode, codeDailyQuota)
	}
	// The classic quota of another account is separate.
	mustToken(t, e.classic(appID, appSecret))
	e.clk.Advance(24 * time.Hour)
	mustToken(t, e.wecom(corpID, corpSecret))
}
