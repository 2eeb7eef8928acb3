package wxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Accounts every test environment starts with.
const (
	appID      = "wx0000000000000001"
	appSecret  = "app-secret"
	corpID     = "ww0000000000000001"
	corpSecret = "corp-secret"
)

// clock is a settable Config.Now, so tests move time without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(start time.Time) *clock { return &clock{now: start} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// morning is a start time well inside a Beijing day: 10:00 on 10 March 2025.
var morning = time.Date(2025, 3, 10, 10, 0, 0, 0, beijing)

// reply is the union of every answer the fake gives, plus the HTTP status
// and raw body.
type reply struct {
	Status      int      `json:"-"`
	Body        string   `json:"-"`
	ErrCode     int      `json:"errcode"`
	ErrMsg      string   `json:"errmsg"`
	AccessToken string   `json:"access_token"`
	ExpiresIn   int      `json:"expires_in"`
	Ticket      string   `json:"ticket"`
	IPList      []string `json:"ip_list"`
}

// caller makes requests to a fake, in-process or over HTTP.
type caller struct {
	t    testing.TB
	c    *http.Client
	base string
}

// try sends one request and decodes the answer; it does not fail the test,
// so it may be used from other goroutines.
func (c caller) try(ctx context.Context, method, path string, q url.Values, body string) (reply, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return reply{}, err
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	var r reply
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &r); err != nil {
			return reply{}, fmt.Errorf("decoding %q: %w", data, err)
		}
	}
	r.Status, r.Body = resp.StatusCode, string(data)
	return r, nil
}

func (c caller) do(method, path string, q url.Values, body string) reply {
	c.t.Helper()
	r, err := c.try(context.Background(), method, path, q, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c caller) classic(appid, secret string) reply {
	c.t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}
	return c.do(http.MethodGet, "/cgi-bin/token", q, "")
}

func (c caller) stable(appid, secret string, force bool) reply {
	c.t.Helper()
	body := fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%t}`, appid, secret, force)
	return c.do(http.MethodPost, "/cgi-bin/stable_token", nil, body)
}

func (c caller) wecom(corpid, secret string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, "/cgi-bin/gettoken", url.Values{"corpid": {corpid}, "corpsecret": {secret}}, "")
}

// use calls getcallbackip with token and returns the errcode (0 for success).
func (c caller) use(token string) int {
	c.t.Helper()
	r := c.do(http.MethodGet, "/cgi-bin/getcallbackip", url.Values{"access_token": {token}}, "")
	if r.ErrCode == 0 && len(r.IPList) == 0 {
		c.t.Fatalf("getcallbackip: no errcode and no ip_list: %s", r.Body)
	}
	return r.ErrCode
}

func (c caller) ticket(token, typ string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, "/cgi-bin/ticket/getticket", url.Values{"access_token": {token}, "type": {typ}}, "")
}

// env is a fake with one app and one corp, a clock, and a caller.
type env struct {
	f   *Fake
	clk *clock
	caller
}

// newEnv builds an env reached through Client; cfg.Now is replaced by the
// env's clock.
func newEnv(t testing.TB, cfg Config) env {
	clk := newClock(morning)
	cfg.Now = clk.Now
	f := New(cfg)
	f.AddApp(appID, appSecret)
	f.AddCorp(corpID, corpSecret)
	return env{f: f, clk: clk, caller: caller{t: t, c: f.Client(), base: "https://api.weixin.qq.com"}}
}

// newServerEnv is newEnv over a real loopback HTTP server.
func newServerEnv(t testing.TB, cfg Config) env {
	e := newEnv(t, cfg)
	ts := httptest.NewServer(e.f)
	t.Cleanup(ts.Close)
	e.caller = caller{t: t, c: ts.Client(), base: ts.URL}
	return e
}

// mustToken fails the test unless r carries a token.
func mustToken(t testing.TB, r reply) string {
	t.Helper()
	if r.ErrCode != 0 || r.AccessToken == "" {
		t.Fatalf("want a token, got status %d body %s", r.Status, r.Body)
	}
	return r.AccessToken
}

func TestNotFound(t *testing.T) {
	e := newServerEnv(t, Config{})
	for _, path := range []string{"/", "/cgi-bin/", "/cgi-bin/unknown", "/cgi-bin/token/extra"} {
		if r := e.do(http.MethodGet, path, nil, ""); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, r.Status)
		}
	}
}

func TestStatsUnknownID(t *testing.T) {
	e := newEnv(t, Config{})
	e.classic("wx-unknown", "x")
	if got := e.f.Stats("wx-unknown"); got != (Stats{}) {
		t.Errorf("Stats of an unknown id = %+v, want zero", got)
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	if got, want := c.lifetime(), 7200*time.Second; got != want {
		t.Errorf("lifetime = %v, want %v", got, want)
	}
	if got, want := c.overlap(), 5*time.Minute; got != want {
		t.Errorf("overlap = %v, want %v", got, want)
	}
	if got, want := c.stableRenewBefore(), 5*time.Minute; got != want {
		t.Errorf("stableRenewBefore = %v, want %v", got, want)
	}
	if got, want := c.dailyLimit(), 2000; got != want {
		t.Errorf("dailyLimit = %v, want %v", got, want)
	}
	neg := Config{Overlap: -1, StableRenewBefore: -1, Lifetime: time.Millisecond}
	if neg.overlap() != 0 || neg.stableRenewBefore() != 0 || neg.lifetime() != time.Second {
		t.Errorf("negative and tiny values: overlap %v, renew %v, lifetime %v; want 0, 0, 1s",
			neg.overlap(), neg.stableRenewBefore(), neg.lifetime())
	}
}

func TestTokenInfo(t *testing.T) {
	e := newEnv(t, Config{Lifetime: time.Hour, Overlap: time.Minute})
	first := mustToken(t, e.classic(appID, appSecret))
	info, ok := e.f.TokenInfo(first)
	if want := (TokenInfo{Account: appID, Expires: morning.Add(time.Hour)}); !ok || info != want {
		t.Fatalf("TokenInfo of a new token = %+v, %v; want %+v", info, ok, want)
	}
	e.clk.Advance(time.Second)
	mustToken(t, e.classic(appID, appSecret))
	if info, _ := e.f.TokenInfo(first); !info.Dies.Equal(morning.Add(time.Second+time.Minute)) || info.Killed {
		t.Errorf("replaced token: %+v; want Dies at the end of the overlap, not killed", info)
	}
	wecom := mustToken(t, e.wecom(corpID, corpSecret))
	e.f.Expire(corpID)
	if info, _ := e.f.TokenInfo(wecom); info.Account != corpID || !info.Killed {
		t.Errorf("WeCom token after Expire: %+v; want the corp's, killed", info)
	}
	if _, ok := e.f.TokenInfo("1_unknown"); ok {
		t.Error("TokenInfo of a value never issued reports it known")
	}
}
