package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/admin"
)

const (
	opsKey    = "ops-key-0123456789abcdef"
	viewerKey = "viewer-key-0123456789abc"
)

// fakeAdmin knows two keys and keeps the events recorded.
type fakeAdmin struct {
	mu     sync.Mutex
	events []admin.Event
}

func (f *fakeAdmin) Authenticate(key string) (admin.Identity, error) {
	switch key {
	case opsKey:
		return admin.Identity{Name: "ops", Role: "operator"}, nil
	case viewerKey:
		return admin.Identity{Name: "view", Role: "viewer"}, nil
	}
	return admin.Identity{}, admin.ErrUnknownKey
}

func (f *fakeAdmin) Record(_ context.Context, ev admin.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	return nil
}

func (f *fakeAdmin) recorded() []admin.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]admin.Event(nil), f.events...)
}

// seen is a request as the admin API received it.
type seen struct {
	method, path, rawPath, auth, cookie, csrf, body string
}

// env is a dashboard in front of a stand-in admin API that answers what
// it was asked, on a real HTTP server, with a clock the test moves.
type env struct {
	srv   *httptest.Server
	admin *fakeAdmin
	mu    sync.Mutex
	now   time.Time
	last  seen
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{admin: &fakeAdmin{}, now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	cfg.Admin = e.admin
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.API = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.last = seen{r.Method, r.URL.Path, r.URL.RawPath, r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get(csrfHeader), string(b)}
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	cfg.Now = func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", u)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) advance(d time.Duration) { e.mu.Lock(); e.now = e.now.Add(d); e.mu.Unlock() }

func (e *env) lastSeen() seen { e.mu.Lock(); defer e.mu.Unlock(); return e.last }

type resp struct {
	status int
	header http.Header
	body   string
}

// do sends a request; headers are name, value pairs.
func (e *env) do(t *testing.T, method, path, body string, headers ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	r, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

// login signs in with key and returns the session cookie and CSRF token.
func (e *env) login(t *testing.T, key string) (cookie *http.Cookie, csrf string) {
	t.Helper()
	r := e.do(t, "POST", "/ui/login", `{"key":"`+key+`"}`, "Content-Type", "application/json")
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var ans loginAnswer
	json.Unmarshal([]byte(r.body), &ans)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == cookieName {
			cookie = c
		}
	}
	if cookie == nil || ans.CSRF == "" {
		t.Fatalf("login gave cookie %v, csrf %q", cookie, ans.CSRF)
	}
	return cookie, ans.CSRF
}

func TestLoginCookie(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.do(t, "POST", "/ui/login", `{"key":"`+opsKey+`"}`, "Content-Type", "application/json")
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	set := r.header.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("Set-Cookie %q is Secure on plain HTTP: the browser would never send it back", set)
	}
	if strings.Contains(r.body, opsKey) {
		t.Errorf("the login answer shows the key: %s", r.body)
	}
	var ans loginAnswer
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || ans.Name != "ops" || ans.Role != "operator" || len(ans.CSRF) < 40 {
		t.Errorf("login answer %s", r.body)
	}
	// Behind a proxy that terminates TLS the cookie is HTTPS-only.
	r = e.do(t, "POST", "/ui/login", `{"key":"`+opsKey+`"}`, "Content-Type", "application/json", "X-Forwarded-Proto", "https")
	if set := r.header.Get("Set-Cookie"); !strings.Contains(set, "Secure") {
		t.Errorf("Set-Cookie over HTTPS %q is not Secure", set)
	}
}

func TestLoginRefused(t *testing.T) {
	e := newEnv(t, Config{})
	for _, c := range []struct {
		name, body string
		headers    []string
		want       int
	}{
		{"wrong key", `{"key":"not-a-key-0123456789"}`, []string{"Content-Type", "application/json"}, 401},
		{"empty key", `{"key":""}`, []string{"Content-Type", "application/json"}, 400},
		{"not JSON", `key=` + opsKey, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"malformed", `{"key":`, []string{"Content-Type", "application/json"}, 400},
		{"from another site", `{"key":"` + opsKey + `"}`, []string{"Content-Type", "application/json", "Origin", "https://evil.example"}, 403},
		{"cross-site fetch", `{"key":"` + opsKey + `"}`, []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403},
		{"oversized", `{"key":"` + strings.Repeat("k", 5000) + `"}`, []string{"Content-Type", "application/json"}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, "POST", "/ui/login", c.body, c.headers...)
			if r.status != c.want || r.header.Get("Set-Cookie") != "" {
				t.Errorf("%d, Set-Cookie %q; want %d and none", r.status, r.header.Get("Set-Cookie"), c.want)
			}
		})
	}
	if r := e.do(t, "GET", "/ui/login?key="+opsKey, ""); r.status == 200 || r.header.Get("Set-Cookie") != "" {
		t.Errorf("GET /ui/login: %d, Set-Cookie %q; want a refusal", r.status, r.header.Get("Set-Cookie"))
	}
	var refused int
	for _, ev := range e.admin.recorded() {
		if ev.Action == "ui.login" && ev.Result == admin.ResultRefused && ev.Actor == "" {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d refused logins recorded, want 1 (the wrong key): %+v", refused, e.admin.recorded())
	}
}

func TestForward(t *testing.T) {
	e := newEnv(t, Config{})
	if r := e.do(t, "GET", "/ui/api/credentials", ""); r.status != 401 {
		t.Errorf("without a session: %d, want 401", r.status)
	}
	cookie, csrf := e.login(t, opsKey)
	ck := cookie.Name + "=" + cookie.Value

	r := e.do(t, "GET", "/ui/api/credentials?x=1", "", "Cookie", ck)
	got := e.lastSeen()
	if r.status != 200 || got.path != "/v1/admin/credentials" || got.auth != "Bearer "+opsKey || got.cookie != "" {
		t.Errorf("GET forwarded as %+v (%d); want /v1/admin/credentials with the key and no cookie", got, r.status)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get(nowHeader) == "" {
		t.Errorf("API answer headers %v: want no-store and %s", r.header, nowHeader)
	}

	// Changes need the CSRF token.
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"no token", []string{"Cookie", ck}},
		{"wrong token", []string{"Cookie", ck, csrfHeader, csrf[:len(csrf)-1] + "x"}},
		{"another site", []string{"Cookie", ck, csrfHeader, csrf, "Origin", "http://evil.example"}},
		{"cross-site", []string{"Cookie", ck, csrfHeader, csrf, "Sec-Fetch-Site", "cross-site"}},
	} {
		e.mu.Lock()
		e.last = seen{}
		e.mu.Unlock()
		if r := e.do(t, "POST", "/ui/api/credentials/wx1/refresh", "", c.headers...); r.status != 403 {
			t.Errorf("%s: %d, want 403", c.name, r.status)
		}
		if got := e.lastSeen(); got.path != "" {
			t.Errorf("%s: the admin API was called: %+v", c.name, got)
		}
	}
	// An authorizer's id holds a slash, escaped in the path.
	r = e.do(t, "POST", "/ui/api/credentials/plat%2Fwxauth01/refresh", `{}`, "Cookie", ck, csrfHeader, csrf,
		"Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin")
	got = e.lastSeen()
	if r.status != 200 || got.method != "POST" || got.path != "/v1/admin/credentials/plat/wxauth01/refresh" ||
		got.rawPath != "/v1/admin/credentials/plat%2Fwxauth01/refresh" || got.csrf != "" || got.body != "{}" {
		t.Errorf("POST forwarded as %+v (%d)", got, r.status)
	}
}

func TestSessionEnds(t *testing.T) {
	e := newEnv(t, Config{IdleTimeout: time.Hour, MaxAge: 3 * time.Hour})
	cookie, _ := e.login(t, viewerKey)
	ck := cookie.Name + "=" + cookie.Value
	alive := func() bool { return e.do(t, "GET", "/ui/session", "", "Cookie", ck).status == 200 }

	// Used every 50 minutes, it lives until the absolute limit.
	for range 3 {
		e.advance(50 * time.Minute)
		if !alive() {
			t.Fatal("a session in use ended before its maximum age")
		}
	}
	e.advance(31 * time.Minute) // 3h01m after the login
	if alive() {
		t.Error("a session outlived its maximum age")
	}

	cookie, _ = e.login(t, viewerKey)
	ck = cookie.Name + "=" + cookie.Value
	e.advance(time.Hour)
	if alive() {
		t.Error("a session outlived its idle timeout")
	}

	cookie, csrf := e.login(t, viewerKey)
	ck = cookie.Name + "=" + cookie.Value
	if r := e.do(t, "POST", "/ui/logout", "", "Cookie", ck); r.status != 403 || !alive() {
		t.Errorf("logout without the CSRF token: %d; want 403 and the session kept", r.status)
	}
	r := e.do(t, "POST", "/ui/logout", "", "Cookie", ck, csrfHeader, csrf)
	if r.status != 200 || alive() || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d, Set-Cookie %q; want the session ended and the cookie cleared", r.status, r.header.Get("Set-Cookie"))
	}
	if r := e.do(t, "GET", "/ui/api/credentials", "", "Cookie", ck); r.status != 401 {
		t.Errorf("API after logout: %d, want 401", r.status)
	}
}

func TestSessionBound(t *testing.T) {
	e := newEnv(t, Config{MaxSessions: 3})
	var cookies []string
	for range 4 {
		c, _ := e.login(t, viewerKey)
		cookies = append(cookies, c.Name+"="+c.Value)
		e.advance(time.Second)
	}
	// The fourth login ended the least recently used: the first.
	want := []int{401, 200, 200, 200}
	for i, ck := range cookies {
		if r := e.do(t, "GET", "/ui/session", "", "Cookie", ck); r.status != want[i] {
			t.Errorf("session %d: %d, want %d", i, r.status, want[i])
		}
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t, Config{})
	for _, c := range []struct {
		path, ctype string
		want        int
	}{
		{"/ui/", "text/html", 200},
		{"/ui/assets/app.js", "javascript", 200},
		{"/ui/assets/app.css", "text/css", 200},
		{"/ui/assets/icon.svg", "image/svg+xml", 200},
		{"/ui/assets/", "", 404},
		{"/ui/assets/nope.js", "", 404},
		{"/ui/elsewhere", "", 404},
	} {
		r := e.do(t, "GET", c.path, "")
		if r.status != c.want || !strings.Contains(r.header.Get("Content-Type"), c.ctype) {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, r.status, r.header.Get("Content-Type"), c.want, c.ctype)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || r.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: CSP %q, X-Frame-Options %q", c.path, csp, r.header.Get("X-Frame-Options"))
		}
	}
	// Revalidated, not fetched again, while the binary is the same.
	for _, path := range []string{"/ui/", "/ui/assets/app.js"} {
		tag := e.do(t, "GET", path, "").header.Get("ETag")
		if r := e.do(t, "GET", path, "", "If-None-Match", tag); tag == "" || r.status != http.StatusNotModified {
			t.Errorf("GET %s with its ETag %q: %d, want 304", path, tag, r.status)
		}
	}
	// No inline script: the CSP would block it.
	page := e.do(t, "GET", "/ui/", "").body
	if strings.Contains(page, "<script>") || strings.Contains(page, "onclick") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the page has inline script or an external URL")
	}
	js := e.do(t, "GET", "/ui/assets/app.js", "").body
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "http://") || strings.Contains(js, "https://") {
		t.Error("app.js sets innerHTML or loads from another origin")
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without Admin and API: no error")
	}
	if _, err := New(Config{Admin: &fakeAdmin{}}); err == nil {
		t.Error("New without API: no error")
	}
}

type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestLoginNoRandomness(t *testing.T) {
	e := newEnv(t, Config{Rand: failingRand{}})
	r := e.do(t, "POST", "/ui/login", `{"key":"`+opsKey+`"}`, "Content-Type", "application/json")
	if r.status != 500 || r.header.Get("Set-Cookie") != "" {
		t.Errorf("login without randomness: %d %q; want 500 and no cookie", r.status, r.header.Get("Set-Cookie"))
	}
}

func TestLoginThrottled(t *testing.T) {
	e := newEnv(t, Config{MaxFailedLogins: 3})
	login := func(key string) int {
		return e.do(t, "POST", "/ui/login", `{"key":"`+key+`"}`, "Content-Type", "application/json").status
	}
	for i := range 3 {
		if st := login("wrong-key-0123456789"); st != 401 {
			t.Fatalf("failed login %d: %d, want 401", i+1, st)
		}
	}
	// The fourth try in the minute is refused, even with a good key.
	if st := login(opsKey); st != 429 {
		t.Errorf("login after 3 failures: %d, want 429", st)
	}
	e.advance(time.Minute)
	if st := login(opsKey); st != 200 {
		t.Errorf("login a minute later: %d, want 200", st)
	}
	// The refused try is in the audit log.
	var throttled int
	for _, ev := range e.admin.recorded() {
		if ev.Status == 429 && ev.Result == admin.ResultRefused {
			throttled++
		}
	}
	if throttled != 1 {
		t.Errorf("%d throttled logins recorded, want 1", throttled)
	}
}

func TestThrottleBounded(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	th := &throttle{max: 1, window: time.Minute, now: func() time.Time { return now }, failures: map[string]*failures{}}
	for i := range maxTracked + 5 {
		th.failed(fmt.Sprint("10.0.", i/256, ".", i%256))
	}
	if n := len(th.failures); n > maxTracked {
		t.Errorf("%d addresses tracked, want at most %d", n, maxTracked)
	}
	th.failed("192.0.2.1")
	if th.allowed("192.0.2.1") {
		t.Error("an address past its failures is allowed")
	}
	now = now.Add(time.Minute)
	if !th.allowed("192.0.2.1") {
		t.Error("an address is still refused after the window")
	}
}
