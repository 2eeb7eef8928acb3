package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// hotAPI is an API over a real manager holding a token for each of ids,
// for opsKey (all credentials) and shopKey ("shop" only).
func hotAPI(tb testing.TB, ids ...string) (*Server, *token.Manager, *wxtest.Fake) {
	tb.Helper()
	return hotAPIObserved(tb, nil, ids...)
}

// hotAPIObserved is hotAPI with obs as the Observer.
func hotAPIObserved(tb testing.TB, obs Observer, ids ...string) (*Server, *token.Manager, *wxtest.Fake) {
	tb.Helper()
	fake := wxtest.New(wxtest.Config{})
	up := &wechat.Client{HTTP: fake.Client(), API: "http://wechat"}
	var creds []token.Credential
	for _, id := range ids {
		fake.AddApp(id, secret)
		creds = append(creds, token.Credential{ID: id, Kind: "mp", Source: classicSource(up, id, secret)})
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := token.New(token.Config{Store: memory.New(), Logger: quiet}, creds)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	for _, id := range ids {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, err := m.Token(id); err == nil {
				break
			} else if time.Now().After(deadline) {
				tb.Fatalf("%s: no token: %v", id, err)
			}
		}
	}
	api, err := New(Config{Tokens: m, Logger: quiet, Observer: obs, Clients: []Client{
		{Name: "ops", KeyHash: sha256.Sum256([]byte(opsKey)), Allow: []string{"*"}},
		{Name: "shop", KeyHash: sha256.Sum256([]byte(shopKey)), Allow: []string{"shop"}},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return api, m, fake
}

// sink is a ResponseWriter that keeps nothing, reused from request to
// request as net/http reuses its own per connection, so that the
// allocations counted are the handler's.
type sink struct {
	h      http.Header
	status int
	n      int
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) WriteHeader(code int)        { s.status = code }
func (s *sink) Write(p []byte) (int, error) { s.n += len(p); return len(p), nil }

// BenchmarkGetToken is GET /v1/tokens/{id} through the whole API: routing,
// the key, the lookup and the body.
func BenchmarkGetToken(b *testing.B) {
	api, _, _ := hotAPI(b, "shop")
	b.Run("sink", func(b *testing.B) {
		w := &sink{h: http.Header{}}
		r := httptest.NewRequest(http.MethodGet, "/v1/tokens/shop", nil)
		r.Header["Authorization"] = []string{"Bearer " + opsKey}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			w.status = 0
			api.ServeHTTP(w, r)
			if w.status != 0 && w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	})
	b.Run("recorder", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodGet, "/v1/tokens/shop", nil)
		r.Header["Authorization"] = []string{"Bearer " + opsKey}
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// expiry is the part of a token answer that moves with the clock.
var expiry = regexp.MustCompile(`"expires_in":[0-9]+,"expires_at":"[^"]*"`)

// TestFastRouteSameAsMux: every request answers the same whether
// ServeHTTP routes it itself or leaves it to the mux, and the fast route
// takes the requests it should.
func TestFastRouteSameAsMux(t *testing.T) {
	api, _, _ := hotAPI(t, "shop", "hr", "a b", "s")
	tests := []struct {
		method, target, key string
		fast                bool
	}{
		{"GET", "/v1/tokens/shop", opsKey, true},
		{"GET", "/v1/tokens/shop", shopKey, true},
		{"GET", "/v1/tokens/hr", shopKey, true}, // 403
		{"GET", "/v1/tokens/shop", "", true},    // 401
		{"GET", "/v1/tokens/shop", "not-a-key-0123456789", true},
		{"GET", "/v1/tokens/nope", opsKey, true}, // 404
		{"GET", "/v1/tokens/%73hop", opsKey, true},
		{"GET", "/v1/tokens/a%20b", opsKey, true},
		{"GET", "/v1/tokens/s", opsKey, true},
		{"GET", "/v1/tokens/a%2Fb", opsKey, false},
		{"GET", "/v1/tokens/.", opsKey, false},
		{"GET", "/v1/tokens/..", opsKey, false},
		{"GET", "/v1/tokens/%2E%2E", opsKey, false},
		{"GET", "/v1/tokens/", opsKey, false},
		{"GET", "/v1/tokens", opsKey, false},
		{"GET", "/v1/tokens//shop", opsKey, false},
		{"GET", "/v1/tokens/shop/", opsKey, false},
		{"GET", "/v1/tokens/shop/invalidate", opsKey, false},
		{"GET", "/v1/tokens/shop/jssdk", opsKey, false},
		{"GET", "/v1/tokens/plat/wxa", opsKey, true},  // 404
		{"GET", "/v1/tokens/plat/wxa", shopKey, true}, // 403
		{"GET", "/v1/tokens/plat/wxa", "", true},      // 401
		{"GET", "/v1/tokens/plat/%77xa", opsKey, false},
		{"GET", "/v1/tokens/plat/a%2Fb", opsKey, false},
		{"GET", "/v1/tokens/plat/.", opsKey, false},
		{"GET", "/v1/tokens/./wxa", opsKey, false},
		{"GET", "/v1/tokens/plat//wxa", opsKey, false},
		{"GET", "/v1/tokens/plat/wxa/", opsKey, false},
		{"GET", "/v1/tokens/plat/wxa/tickets", opsKey, false},
		{"GET", "/v1/tokens/plat/wxa/tickets/jsapi", opsKey, false},
		{"GET", "/v1/tokensshop", opsKey, false},
		{"HEAD", "/v1/tokens/shop", opsKey, false},
		{"POST", "/v1/tokens/shop", opsKey, false},
		{"GET", "http://example.com/v1/tokens/shop", opsKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			req := func() *http.Request {
				r := httptest.NewRequest(tt.method, tt.target, nil)
				if tt.key != "" {
					r.Header.Set("Authorization", "Bearer "+tt.key)
				}
				return r
			}
			if _, fast := api.hot.fastTokenID(req()); fast != tt.fast {
				t.Errorf("fast route: got %v, want %v", fast, tt.fast)
			}
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			api.ServeHTTP(got, req())
			api.mux.ServeHTTP(want, req())
			if got.Code != want.Code {
				t.Errorf("status: got %d, want %d (the mux's)", got.Code, want.Code)
			}
			if !maps.EqualFunc(got.Header(), want.Header(), slices.Equal) {
				t.Errorf("header: got %v, want %v", got.Header(), want.Header())
			}
			g := expiry.ReplaceAllString(got.Body.String(), "EXPIRY")
			w := expiry.ReplaceAllString(want.Body.String(), "EXPIRY")
			if g != w {
				t.Errorf("body: got %q, want %q", g, w)
			}
		})
	}
}

// TestFastRouteYields: a route that could take a path under /v1/tokens/
// other than GET /v1/tokens/{id} turns the fast route off, so the mux
// decides between them.
func TestFastRouteYields(t *testing.T) {
	base := []endpoint{
		{Method: "GET", Path: "/v1/tokens/{id}"},
		{Method: "POST", Path: "/v1/tokens/{id}/invalidate"},
		{Method: "GET", Path: "/v1/tokens"},
		{Method: "GET", Path: "/v1/tickets/{id}"},
	}
	for _, tt := range []struct {
		extra endpoint
		want  bool
	}{
		{endpoint{Method: "GET", Path: "/healthz"}, true},
		{endpoint{Method: "GET", Path: "/v1/tokens/{id}/ticket"}, true},
		{endpoint{Method: "GET", Path: "/v1/tokens/export"}, false},
		{endpoint{Method: "PUT", Path: "/v1/tokens/{id}"}, false},
		{endpoint{Method: "GET", Path: "/v1/tokens/{id...}"}, false},
		{endpoint{Method: "GET", Path: "/v1/tokens/{ns}/{id}/tickets/{type}"}, true},
	} {
		if got := newHotPath(append(slices.Clone(base), tt.extra)).route; got != tt.want {
			t.Errorf("with %s %s: fast route %v, want %v", tt.extra.Method, tt.extra.Path, got, tt.want)
		}
	}
	// Namespaced ids take the fast route only beside GET /v1/tokens/{ns}/{id},
	// and never for a reserved second segment.
	h := newHotPath(append(slices.Clone(base), endpoint{Method: "GET", Path: "/v1/tokens/{ns}/{id}"}))
	if !h.namespaced || !h.reserved["invalidate"] || len(h.reserved) != 1 {
		t.Errorf("with GET /v1/tokens/{ns}/{id}: namespaced %v, reserved %v; want true, [invalidate]", h.namespaced, h.reserved)
	}
	if newHotPath(base).namespaced {
		t.Error("namespaced fast route without a GET /v1/tokens/{ns}/{id} route")
	}
	for _, extra := range []endpoint{
		{Method: "POST", Path: "/v1/tokens/{ns}/{id}"},
		{Method: "GET", Path: "/v1/tokens/export/{id}"},
		{Method: "GET", Path: "/v1/tokens/{a}/{b}"},
	} {
		if newHotPath(append(slices.Clone(base), endpoint{Method: "GET", Path: "/v1/tokens/{ns}/{id}"}, extra)).namespaced {
			t.Errorf("with %s %s: namespaced fast route, want the mux to decide", extra.Method, extra.Path)
		}
	}
}

// TestTokenBodiesShareSlots: with more credentials than body slots, ids
// that share a slot each get their own token.
func TestTokenBodiesShareSlots(t *testing.T) {
	var ids []string
	for i := range len(hotPath{}.bodies) + 44 {
		ids = append(ids, fmt.Sprintf("app%03d", i))
	}
	api, m, _ := hotAPI(t, ids...)
	for range 2 { // the second pass finds the slots taken by others
		for _, id := range ids {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/v1/tokens/"+id, nil)
			r.Header.Set("Authorization", "Bearer "+opsKey)
			api.ServeHTTP(w, r)
			var got struct{ ID, Access_Token string }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s: %d %q: %v", id, w.Code, w.Body, err)
			}
			snap, _ := m.Token(id)
			if got.ID != id || got.Access_Token != snap.Token {
				t.Fatalf("%s: got id %q token %q, want %q %q", id, got.ID, got.Access_Token, id, snap.Token)
			}
		}
	}
}

// TestTokenBodyFollowsSnapshot: a new token is served at once, not the
// body kept for the old one. In the bubble the clock stands still, so the
// new token's answer falls in the same second with the same expires_in.
func TestTokenBodyFollowsSnapshot(t *testing.T) {
	synctest.Test(t, testTokenBodyFollowsSnapshot)
}

func testTokenBodyFollowsSnapshot(t *testing.T) {
	api, m, fake := hotAPI(t, "shop")
	get := func() string {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/v1/tokens/shop", nil)
		r.Header.Set("Authorization", "Bearer "+opsKey)
		api.ServeHTTP(w, r)
		var got struct{ Access_Token string }
		json.Unmarshal(w.Body.Bytes(), &got)
		return got.Access_Token
	}
	old, _ := m.Token("shop")
	if got := get(); got != old.Token {
		t.Fatalf("got %q, want %q", got, old.Token)
	}
	fake.Expire("shop")
	snap, res, err := m.Report(t.Context(), "shop", old.Token)
	if err != nil || snap.Token == old.Token {
		t.Fatalf("report: %v %v %v; want a new token", snap, res, err)
	}
	if got := get(); got != snap.Token {
		t.Fatalf("after the refresh: got %q, want the new %q", got, snap.Token)
	}
	// A body kept for the old snapshot in the same second, with the same
	// expires_in (as when two tokens end in the same second), is not the
	// new token's.
	now := time.Now()
	stale := &cachedBody{snap: old, unix: now.Unix(), in: expiresIn(snap, now), body: []byte(`{"access_token":"stale"}`)}
	api.hot.bodies[maphash.String(api.hot.seed, "shop")%uint64(len(api.hot.bodies))].Store(stale)
	if got := get(); got != snap.Token {
		t.Fatalf("with a body kept for the old token: got %q, want the new %q", got, snap.Token)
	}
}

// tricky are strings that JSON must escape, or that look as if it must.
var tricky = []string{
	"", "plain-ASCII_token.0123", `quote"back\slash`, "/slash/", "<html>&amp;",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f", "ümlaut 中文 😀", "\u2028line\u2029para",
	"bad\xffutf8\xc3", "\xed\xa0\x80surrogate", "end\\",
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range tricky {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range tricky {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

// checkJSONString compares appendJSONString with encoding/json, HTML
// escaping off as writeJSON has it.
func checkJSONString(t *testing.T, s string) {
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	got := append(appendJSONString([]byte("x"), s), '\n')
	if !bytes.Equal(got[1:], want.Bytes()) {
		t.Errorf("appendJSONString(%q) = %s, want %s", s, got[1:], want.Bytes())
	}
}

// TestAppendToken: the token answer is what encoding/json makes of the
// same fields, whatever the strings hold.
func TestAppendToken(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("CST", 8*3600))
	for _, s := range tricky {
		for _, result := range []string{"", "live", s} {
			snap := &token.Snapshot{ID: "id-" + s, Kind: s, Token: s + "-token", ServeUntil: now.Add(7000500 * time.Millisecond)}
			in := expiresIn(snap, now)
			got := appendToken(nil, snap, now, in, result)
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			enc.Encode(struct {
				ID          string `json:"id"`
				Kind        string `json:"kind"`
				AccessToken string `json:"access_token"`
				ExpiresIn   int64  `json:"expires_in"`
				ExpiresAt   string `json:"expires_at"`
				Result      string `json:"result,omitempty"`
			}{snap.ID, snap.Kind, snap.Token, 7000, "2026-03-03T23:02:47Z", result})
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("got  %s\nwant %s", got, want.Bytes())
			}
		}
	}
}
