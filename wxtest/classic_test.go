package wxtest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"
)

func TestClassicOverlap(t *testing.T) {
	e := newEnv(t, Config{})
	first := mustToken(t, e.classic(appID, appSecret))
	second := mustToken(t, e.classic(appID, appSecret))
	if first == second {
		t.Fatalf("second call returned the same token")
	}
	steps := []struct {
		advance     time.Duration
		first, next int
	}{
		{0, 0, 0},
		{5*time.Minute - time.Second, 0, 0},
		{time.Second, codeInvalidCredential, 0},
		{time.Hour, codeInvalidCredential, 0},
	}
	for _, s := range steps {
		e.clk.Advance(s.advance)
		if got := e.use(first); got != s.first {
			t.Errorf("after +%v: replaced token answers %d, want %d", s.advance, got, s.first)
		}
		if got := e.use(second); got != s.next {
			t.Errorf("after +%v: current token answers %d, want %d", s.advance, got, s.next)
		}
	}
	want := Stats{ClassicCalls: 2, Issued: 2, GoodUses: 6, DeadUses: 2}
	if got := e.f.Stats(appID); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestClassicOverlapConfig(t *testing.T) {
	e := newEnv(t, Config{Overlap: -1})
	first := mustToken(t, e.classic(appID, appSecret))
	mustToken(t, e.classic(appID, appSecret))
	if got := e.use(first); got != codeInvalidCredential {
		t.Errorf("with no overlap the replaced token answers %d, want %d", got, codeInvalidCredential)
	}
}

func TestClassicExpiry(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.classic(appID, appSecret)
	tok := mustToken(t, r)
	if r.ExpiresIn != 7200 {
		t.Errorf("expires_in = %d, want 7200", r.ExpiresIn)
	}
	e.clk.Advance(7200*time.Second - time.Second)
	if got := e.use(tok); got != 0 {
		t.Errorf("a second before expiry: %d, want 0", got)
	}
	e.clk.Advance(time.Second)
	if got := e.use(tok); got != codeTokenExpired {
		t.Errorf("at expiry: %d, want %d", got, codeTokenExpired)
	}
}

func TestClassicTokenShape(t *testing.T) {
	e := newEnv(t, Config{Lifetime: 90 * time.Second})
	r := e.classic(appID, appSecret)
	tok := mustToken(t, r)
	if len(tok) < 100 || !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(tok) {
		t.Errorf("token %q: want 100+ URL-safe characters", tok)
	}
	if url.QueryEscape(tok) != tok {
		t.Errorf("token %q needs escaping in a query", tok)
	}
	if r.ExpiresIn != 90 {
		t.Errorf("expires_in = %d, want 90", r.ExpiresIn)
	}
}

func TestClassicErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*Fake)
		method string
		query  url.Values
		code   int
		msg    string
	}{
		{"no grant_type", nil, "GET", url.Values{"appid": {appID}, "secret": {appSecret}}, codeInvalidGrantType, "invalid grant_type"},
		{"wrong grant_type", nil, "GET", url.Values{"grant_type": {"password"}, "appid": {appID}, "secret": {appSecret}}, codeInvalidGrantType, ""},
		{"unknown appid", nil, "GET", url.Values{"grant_type": {grantType}, "appid": {"wx-nobody"}, "secret": {appSecret}}, codeInvalidAppID, "invalid appid"},
		{"corpid as appid", nil, "GET", url.Values{"grant_type": {grantType}, "appid": {corpID}, "secret": {corpSecret}}, codeInvalidAppID, ""},
		{"wrong secret", nil, "GET", url.Values{"grant_type": {grantType}, "appid": {appID}, "secret": {"nope"}}, codeInvalidSecret, "invalid appsecret"},
		{"frozen", func(f *Fake) { f.FreezeSecret(appID) }, "GET", url.Values{"grant_type": {grantType}, "appid": {appID}, "secret": {appSecret}}, codeSecretFrozen, ""},
		{"frozen, wrong secret", func(f *Fake) { f.FreezeSecret(appID) }, "GET", url.Values{"grant_type": {grantType}, "appid": {appID}, "secret": {"nope"}}, codeInvalidSecret, ""},
		{"POST", nil, "POST", url.Values{"grant_type": {grantType}, "appid": {appID}, "secret": {appSecret}}, codeRequireMethod, "require GET method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			if tt.setup != nil {
				tt.setup(e.f)
			}
			r := e.do(tt.method, "/cgi-bin/token", tt.query, "")
			if r.Status != http.StatusOK || r.ErrCode != tt.code || r.AccessToken != "" {
				t.Fatalf("got status %d body %s, want HTTP 200 errcode %d", r.Status, r.Body, tt.code)
			}
			if tt.msg != "" && r.ErrMsg != tt.msg {
				t.Errorf("errmsg = %q, want %q", r.ErrMsg, tt.msg)
			}
			if got := e.f.Stats(appID).Issued; got != 0 {
				t.Errorf("Issued = %d, want 0", got)
			}
		})
	}
}

func TestUnfreezeByNewSecret(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.FreezeSecret(appID)
	e.f.AddApp(appID, "new-secret")
	if r := e.classic(appID, appSecret); r.ErrCode != codeInvalidSecret {
		t.Errorf("old secret: errcode %d, want %d", r.ErrCode, codeInvalidSecret)
	}
	mustToken(t, e.classic(appID, "new-secret"))
}

func TestClassicConcurrent(t *testing.T) {
	const workers, calls = 16, 25
	e := newEnv(t, Config{})
	var (
		mu   sync.Mutex
		seen = make(map[string]bool)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range calls {
				q := url.Values{"grant_type": {grantType}, "appid": {appID}, "secret": {appSecret}}
				r, err := e.try(context.Background(), http.MethodGet, "/cgi-bin/token", q, "")
				if err != nil || r.AccessToken == "" {
					t.Errorf("call failed: %v %s", err, r.Body)
					return
				}
				mu.Lock()
				if seen[r.AccessToken] {
					t.Errorf("token issued twice: %s", r.AccessToken)
				}
				seen[r.AccessToken] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := e.f.Stats(appID)
	if len(seen) != workers*calls || st.Issued != workers*calls || st.ClassicCalls != workers*calls {
		t.Errorf("distinct tokens %d, Issued %d, ClassicCalls %d; want %d each",
			len(seen), st.Issued, st.ClassicCalls, workers*calls)
	}
}

// zeros is a Rand that repeats itself.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// broken is a Rand that fails.
type broken struct{}

func (broken) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestRandomness(t *testing.T) {
	e := newEnv(t, Config{Rand: zeros{}})
	a := mustToken(t, e.classic(appID, appSecret))
	b := mustToken(t, e.classic(appID, appSecret))
	if a == b {
		t.Errorf("a repeating Rand gave the same token twice")
	}

	e = newEnv(t, Config{Rand: broken{}})
	if r := e.classic(appID, appSecret); r.ErrCode != codeSystemBusy {
		t.Errorf("failing Rand: errcode %d, want %d", r.ErrCode, codeSystemBusy)
	}
	if got := e.f.Stats(appID).Issued; got != 0 {
		t.Errorf("Issued = %d, want 0", got)
	}
}

func TestExpire(t *testing.T) {
	e := newEnv(t, Config{})
	classic := mustToken(t, e.classic(appID, appSecret))
	stable := mustToken(t, e.stable(appID, appSecret, false))
	wecom := mustToken(t, e.wecom(corpID, corpSecret))

	e.f.Expire(appID)
	for name, tok := range map[string]string{"classic": classic, "stable": stable} {
		if got := e.use(tok); got != codeTokenExpired {
			t.Errorf("%s token after Expire: %d, want %d", name, got, codeTokenExpired)
		}
	}
	if got := e.use(wecom); got != 0 {
		t.Errorf("another account's token after Expire: %d, want 0", got)
	}
	next := mustToken(t, e.stable(appID, appSecret, false))
	if next == stable || e.use(next) != 0 {
		t.Errorf("stable call after Expire did not issue a working new token")
	}

	e.f.Expire(corpID)
	if got := e.use(wecom); got != codeTokenExpired {
		t.Errorf("WeCom token after Expire: %d, want %d", got, codeTokenExpired)
	}
	e.f.Expire("unknown") // must not panic
}

func TestTokenUseErrors(t *testing.T) {
	e := newEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))
	tests := []struct {
		name  string
		path  string
		query url.Values
		code  int
	}{
		{"missing", "/cgi-bin/getcallbackip", nil, codeTokenMissing},
		{"garbage", "/cgi-bin/getcallbackip", url.Values{"access_token": {"not-a-token"}}, codeInvalidToken},
		{"unknown", "/cgi-bin/getcallbackip", url.Values{"access_token": {"99999_" + tok[len(tok)-128:]}}, codeInvalidCredential},
		{"valid", "/cgi-bin/getcallbackip", url.Values{"access_token": {tok}}, 0},
		{"domain ip", "/cgi-bin/get_api_domain_ip", url.Values{"access_token": {tok}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodGet, tt.path, tt.query, "")
			if r.ErrCode != tt.code {
				t.Fatalf("errcode %d (%s), want %d", r.ErrCode, r.Body, tt.code)
			}
			if tt.code == 0 && (len(r.IPList) != 1 || r.IPList[0] != "127.0.0.1") {
				t.Errorf("ip_list = %v, want [127.0.0.1]", r.IPList)
			}
		})
	}
}
