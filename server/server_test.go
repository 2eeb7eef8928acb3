package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

const (
	shopKey = "shop-key-0123456789"
	opsKey  = "ops-key-0123456789"
	secret  = "TOP-SECRET-VALUE"
)

type env struct {
	fake *wxtest.Fake
	m    *token.Manager
	api  *Server
	srv  *httptest.Server
}

// newEnv runs a real API over a real manager and the fake WeChat. Apps
// "shop" and "hr" exist; "broken" is refused by WeChat (40125).
func newEnv(t *testing.T) *env {
	t.Helper()
	fake := wxtest.New(wxtest.Config{})
	up := &wechat.Client{HTTP: fake.Client(), API: "http://wechat"}
	var creds []token.Credential
	for _, id := range []string{"shop", "hr", "broken"} {
		fake.AddApp(id, secret)
		s := secret
		if id == "broken" {
			s = "wrong"
		}
		creds = append(creds, token.Credential{ID: id, Kind: "mp", Source: classicSource(up, id, s)})
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := token.New(token.Config{Store: memory.New(), Logger: quiet}, creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	api, err := New(Config{Tokens: m, Logger: quiet, CallbackModes: testModes, Clients: []Client{
		{Name: "shop", KeyHash: sha256.Sum256([]byte(shopKey)), Allow: []string{"shop", "broken"}},
		{Name: "ops", KeyHash: sha256.Sum256([]byte(opsKey)), Allow: []string{"*"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{fake: fake, m: m, api: api, srv: httptest.NewServer(api)}
	t.Cleanup(e.srv.Close)
	for _, id := range []string{"shop", "hr"} {
		deadline := time.Now().Add(10 * time.Second)
		for _, err := m.Token(id); err != nil; _, err = m.Token(id) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no token: %v", id, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if s, _ := m.Snapshot("broken"); s.Cause != nil || time.Now().After(deadline) {
			break
		}
	}
	return e
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(t *testing.T, method, path, key, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), secret) {
		t.Fatalf("%s %s: response contains the AppSecret", method, path)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

type tokenBody struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	ExpiresAt   string `json:"expires_at"`
}

func TestGetToken(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/v1/tokens/shop", shopKey, "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET = %d %v %s", r.status, r.header, r.body)
	}
	var tb tokenBody
	if err := json.Unmarshal([]byte(r.body), &tb); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	snap, _ := e.m.Token("shop")
	if tb.ID != "shop" || tb.Kind != "mp" || tb.AccessToken != snap.Token {
		t.Fatalf("body = %+v; want the current token of shop", tb)
	}
	// 7200 s token, refreshed at 0.8±0.05, old one valid 5 min after: the
	// cache time is at most the planned refresh + 5 min - 1 min margin.
	limit := time.Until(snap.NextRefresh) + 4*time.Minute
	if tb.ExpiresIn <= 0 || time.Duration(tb.ExpiresIn)*time.Second > limit {
		t.Fatalf("expires_in = %d s; want in (0, %s]", tb.ExpiresIn, limit)
	}
	at, err := time.Parse(time.RFC3339, tb.ExpiresAt)
	if err != nil || at.Sub(time.Now().Add(time.Duration(tb.ExpiresIn)*time.Second)).Abs() > 2*time.Second {
		t.Fatalf("expires_at = %q, want now + expires_in", tb.ExpiresAt)
	}
	if _, err := (&wechat.Client{HTTP: e.fake.Client()}).CallbackIP(t.Context(), tb.AccessToken); err != nil {
		t.Fatalf("served token fails upstream: %v", err)
	}
}

func TestErrorsMatrix(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"no key", "GET", "/v1/tokens/shop", "", "", 401, "unauthorized"},
		{"wrong key", "GET", "/v1/tokens/shop", "not-a-key-0123456789", "", 401, "unauthorized"},
		{"forbidden", "GET", "/v1/tokens/hr", shopKey, "", 403, "forbidden"},
		{"forbidden unknown", "GET", "/v1/tokens/nope", shopKey, "", 403, "forbidden"},
		{"unknown", "GET", "/v1/tokens/nope", opsKey, "", 404, "not_found"},
		{"no token", "GET", "/v1/tokens/broken", shopKey, "", 503, "unavailable"},
		{"unknown path", "GET", "/v2/whatever", opsKey, "", 404, "not_found"},
		{"report no key", "POST", "/v1/tokens/shop/invalidate", "", `{"access_token":"x"}`, 401, "unauthorized"},
		{"report forbidden", "POST", "/v1/tokens/hr/invalidate", shopKey, `{"access_token":"x"}`, 403, "forbidden"},
		{"report unknown", "POST", "/v1/tokens/nope/invalidate", opsKey, `{"access_token":"x"}`, 404, "not_found"},
		{"malformed", "POST", "/v1/tokens/shop/invalidate", shopKey, `{"access_token":`, 400, "bad_request"},
		{"not an object", "POST", "/v1/tokens/shop/invalidate", shopKey, `["x"]`, 400, "bad_request"},
		{"empty body", "POST", "/v1/tokens/shop/invalidate", shopKey, ``, 400, "bad_request"},
		{"no token field", "POST", "/v1/tokens/shop/invalidate", shopKey, `{}`, 400, "bad_request"},
		{"trailing", "POST", "/v1/tokens/shop/invalidate", shopKey, `{"access_token":"x"} {}`, 400, "bad_request"},
		{"oversized", "POST", "/v1/tokens/shop/invalidate", shopKey, `{"access_token":"` + strings.Repeat("x", 5000) + `"}`, 413, "too_large"},
		{"list no key", "GET", "/v1/tokens", "", "", 401, "unauthorized"},
	}
	before := e.fake.Stats("shop").ClassicCalls
	snap, _ := e.m.Token("shop")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.key, tt.body)
			var body struct {
				Error apiError `json:"error"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("body %q is not the error shape: %v", r.body, err)
			}
			if r.status != tt.status || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Fatalf("%s %s = %d %s; want %d %s", tt.method, tt.path, r.status, r.body, tt.status, tt.code)
			}
			if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if calls := e.fake.Stats("shop").ClassicCalls; calls != before {
		t.Fatalf("bad requests made %d fetches, want 0", calls-before)
	}
	if now, _ := e.m.Token("shop"); now.Token != snap.Token {
		t.Fatal("bad requests changed the token")
	}
	r := e.do(t, "GET", "/v1/tokens/broken", shopKey, "")
	if !strings.Contains(r.body, `"errcode":40125`) {
		t.Fatalf("503 body %s; want the upstream errcode 40125", r.body)
	}
}

func TestInvalidate(t *testing.T) {
	e := newEnv(t)
	old, _ := e.m.Token("shop")
	// WeChat still accepts the token: it is checked, not replaced.
	r := e.do(t, "POST", "/v1/tokens/shop/invalidate", shopKey, `{"access_token":"`+old.Token+`"}`)
	var tb tokenBody
	json.Unmarshal([]byte(r.body), &tb)
	if r.status != 200 || tb.AccessToken != old.Token || !strings.Contains(r.body, `"result":"live"`) {
		t.Fatalf("report of a live token = %d %s; want 200 with the same token and result live", r.status, r.body)
	}
	replaced := e.do(t, "POST", "/v1/tokens/shop/invalidate", shopKey, `{"access_token":"some-older-token"}`)
	json.Unmarshal([]byte(replaced.body), &tb)
	if replaced.status != 200 || tb.AccessToken != old.Token || !strings.Contains(replaced.body, `"result":"replaced"`) {
		t.Fatalf("report of a replaced token = %d %s; want 200 with the current token and result replaced", replaced.status, replaced.body)
	}
	if calls := e.fake.Stats("shop").ClassicCalls; calls != 1 {
		t.Fatalf("fetches = %d, want 1", calls)
	}
}

func TestListAndProbes(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/v1/tokens", shopKey, "")
	var list struct {
		Credentials []status `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || r.status != 200 {
		t.Fatalf("list = %d %s", r.status, r.body)
	}
	if len(list.Credentials) != 2 || list.Credentials[0].ID != "broken" || list.Credentials[1].ID != "shop" {
		t.Fatalf("shop's list = %+v; want broken and shop only", list.Credentials)
	}
	b, s := list.Credentials[0], list.Credentials[1]
	if b.State != "unavailable" || b.Cause == nil || b.Cause.ErrCode != 40125 || s.State != "ok" || s.FetchesToday != 1 {
		t.Fatalf("statuses = %+v %+v", b, s)
	}
	snap, _ := e.m.Token("shop")
	if strings.Contains(r.body, snap.Token) {
		t.Fatal("the status list contains a token")
	}
	if r := e.do(t, "GET", "/v1/upstreams", shopKey, ""); r.status != 200 || r.body != "{\"upstreams\":[]}\n" {
		t.Fatalf("upstreams without a reporter = %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/upstreams", "", ""); r.status != 401 {
		t.Fatalf("upstreams without a key = %d, want 401", r.status)
	}
	if r := e.do(t, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz = %d", r.status)
	}
	if r := e.do(t, "GET", "/readyz", "", ""); r.status != 200 || !strings.Contains(r.body, `"ready":true`) {
		t.Fatalf("readyz = %d %s; want ready (broken has a known cause)", r.status, r.body)
	}
}

// classicSource fetches from cgi-bin/token and checks with getcallbackip,
// as kind.ClassicSource does (package kind builds on this one, so its
// tests cannot use it).
func classicSource(c *wechat.Client, appid, secret string) token.Source {
	return &classic{c, appid, secret}
}

type classic struct {
	c             *wechat.Client
	appid, secret string
}

func (s *classic) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	tok, err := s.c.ClassicToken(ctx, s.appid, s.secret)
	return token.Fetched{Token: tok}, err
}

func (s *classic) Check(ctx context.Context, tok string) error {
	_, err := s.c.CallbackIP(ctx, tok)
	return err
}

// testModes are the callback kinds package kind declares.
var testModes = []CallbackMode{{Kind: "mp", Verify: true}, {Kind: "wecom", Verify: true, Encrypted: true}, {Kind: "component", Encrypted: true}}
