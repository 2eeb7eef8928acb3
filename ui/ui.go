package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/admin"
)

//go:embed static
var static embed.FS

// Admin is what the dashboard needs of the admin API besides its handler
// (*admin.Admin).
type Admin interface {
	// Authenticate returns the holder of an admin key.
	Authenticate(key string) (admin.Identity, error)
	// Record appends an event to the audit log.
	Record(ctx context.Context, ev admin.Event) error
}

var _ Admin = (*admin.Admin)(nil)

// Config configures the dashboard. Zero values mean the documented
// defaults.
type Config struct {
	// Admin checks logins and records them. Required.
	Admin Admin
	// API is the admin API, serving /v1/admin/ (admin.Admin.Handler()).
	// Required.
	API http.Handler
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// IdleTimeout ends a session unused this long (default 12h).
	IdleTimeout time.Duration
	// MaxAge ends a session this long after its login, used or not
	// (default 24h).
	MaxAge time.Duration
	// MaxSessions bounds the sessions held; past it a login ends the least
	// recently used one (default 10,000).
	MaxSessions int
	// MaxFailedLogins is how many failed logins an address may make in a
	// minute; further ones are refused (429) until the minute ends
	// (default 10).
	MaxFailedLogins int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand makes session ids and CSRF tokens; nil means crypto/rand.
	Rand io.Reader
}

// UI is the dashboard: an http.Handler for everything under /ui/.
type UI struct {
	admin    Admin
	api      http.Handler
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	throttle *throttle
	mux      *http.ServeMux
}

// Paths and names the page and the server share.
const (
	cookieName = "wxtoken_session"
	csrfHeader = "X-CSRF-Token"
	// nowHeader carries the server's clock on every API answer, so that
	// the page counts down to an expiry on the server's time, not on a
	// browser's clock that may be off by minutes.
	nowHeader = "X-Wxtoken-Now"
	// maxLogin bounds a login request's body.
	maxLogin = 4 << 10
)

// contentSecurityPolicy lets the page load its own script and style and
// talk to its own origin, nothing else: no inline script, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// New returns the dashboard for cfg.
func New(cfg Config) (*UI, error) {
	if cfg.Admin == nil || cfg.API == nil {
		return nil, errors.New("ui: Config.Admin and Config.API are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 12 * time.Hour
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.MaxFailedLogins <= 0 {
		cfg.MaxFailedLogins = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	u := &UI{admin: cfg.Admin, api: cfg.API, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux(),
		sessions: &sessions{idle: cfg.IdleTimeout, maxAge: cfg.MaxAge, max: cfg.MaxSessions, now: cfg.Now,
			rand: cfg.Rand, byID: map[[32]byte]*session{}},
		throttle: &throttle{max: cfg.MaxFailedLogins, window: time.Minute, now: cfg.Now, failures: map[string]*failures{}}}
	assets, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	tags, err := etags(assets)
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(assets)
	u.mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", tags["index.html"])
		http.ServeFileFS(w, r, assets, "index.html")
	})
	u.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", noDirs(files, tags)))
	u.mux.HandleFunc("POST /ui/login", u.login)
	u.mux.HandleFunc("POST /ui/logout", u.logout)
	u.mux.HandleFunc("GET /ui/session", u.whoami)
	u.mux.HandleFunc("/ui/api/", u.forward)
	u.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such page")
	})
	return u, nil
}

// noDirs refuses directory listings: only the embedded files are served,
// each with its ETag, so that a browser revalidates (no-cache) and gets
// 304 until the binary changes.
func noDirs(h http.Handler, tags map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		if tag, ok := tags[r.URL.Path]; ok {
			w.Header().Set("ETag", tag)
		}
		h.ServeHTTP(w, r)
	})
}

// etags are the embedded files' ETags, by name: a hash of the content,
// as embedded files have no modification time.
func etags(files fs.FS) (map[string]string, error) {
	tags := map[string]string{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		tags[name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return tags, err
}

// ServeHTTP serves the dashboard with its security headers.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a request that changes something came from
// a page of this origin. A browser says where a request comes from in
// Sec-Fetch-Site and, for a POST, Origin; a client that sends neither
// (curl, a test) is not a browser another site can drive.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	o, err := url.Parse(origin)
	return err == nil && o.Host == r.Host
}

// secure reports whether the browser reached us over TLS, directly or
// through a proxy that says so. (A forged X-Forwarded-Proto only makes
// the forger's own cookie HTTPS-only.)
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
}

// current returns the request's session, nil if none is live.
func (u *UI) current(r *http.Request) (*session, string) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, ""
	}
	return u.sessions.get(c.Value), c.Value
}

// checkChange refuses a request that changes something unless it comes
// from our page: same origin, and the session's CSRF token echoed.
func checkChange(w http.ResponseWriter, r *http.Request, s *session) bool {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross_origin", "refused: the request comes from another site")
		return false
	}
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		writeError(w, http.StatusForbidden, "csrf", "refused: missing or wrong "+csrfHeader+" header")
		return false
	}
	return true
}

// loginAnswer is what a login (and GET /ui/session) tells the page.
type loginAnswer struct {
	Name string `json:"name"`
	Role string `json:"role"`
	CSRF string `json:"csrf"`
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross_origin", "refused: the request comes from another site")
		return
	}
	// JSON only: a form on another site cannot send it without asking
	// first (CORS), which we never allow.
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "bad_request", `send {"key":"..."} as application/json`)
		return
	}
	var req struct {
		Key string `json:"key"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLogin)).Decode(&req); err != nil || req.Key == "" {
		writeError(w, http.StatusBadRequest, "bad_request", `send {"key":"..."} with an admin key`)
		return
	}
	ev := admin.Event{Action: "ui.login", Remote: remote(r)}
	if !u.throttle.allowed(ev.Remote) {
		ev.Result, ev.Status, ev.Detail = admin.ResultRefused, http.StatusTooManyRequests, "too many failed logins from this address"
		u.record(r, ev)
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "too_many_attempts", "too many failed logins from this address: try again in a minute")
		return
	}
	who, err := u.admin.Authenticate(req.Key)
	if err != nil {
		u.throttle.failed(ev.Remote)
		ev.Result, ev.Status, ev.Detail = admin.ResultRefused, http.StatusUnauthorized, "unknown admin key"
		u.record(r, ev)
		writeError(w, http.StatusUnauthorized, "unauthorized", "unknown admin key")
		return
	}
	if _, old := u.current(r); old != "" {
		u.sessions.end(old) // a new login replaces the browser's session
	}
	s := &session{name: who.Name, role: who.Role, key: req.Key}
	id, err := u.sessions.create(s)
	if err != nil {
		u.log.Error("ui: no session id", "err", err)
		writeError(w, http.StatusInternalServerError, "failed", "could not start a session")
		return
	}
	ev.Actor, ev.Role, ev.Result, ev.Status = who.Name, who.Role, admin.ResultOK, http.StatusOK
	u.record(r, ev)
	u.setCookie(w, r, id, 0)
	writeJSON(w, http.StatusOK, loginAnswer{who.Name, who.Role, s.csrf})
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	s, id := u.current(r)
	if s == nil {
		u.setCookie(w, r, "", -1)
		writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
		return
	}
	if !checkChange(w, r, s) {
		return
	}
	u.sessions.end(id)
	u.record(r, admin.Event{Action: "ui.logout", Actor: s.name, Role: s.role, Result: admin.ResultOK, Status: http.StatusOK, Remote: remote(r)})
	u.setCookie(w, r, "", -1)
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

// whoami tells a page loaded with a live session who is signed in, and
// the CSRF token it needs. Another site's page cannot read the answer:
// we send no CORS header.
func (u *UI) whoami(w http.ResponseWriter, r *http.Request) {
	s, _ := u.current(r)
	if s == nil {
		writeError(w, http.StatusUnauthorized, "login_required", "sign in with an admin key")
		return
	}
	writeJSON(w, http.StatusOK, loginAnswer{s.name, s.role, s.csrf})
}

// forward sends /ui/api/… to the admin API as /v1/admin/… with the
// session's admin key, so that the admin API checks the role and writes
// the audit log as for any admin client.
func (u *UI) forward(w http.ResponseWriter, r *http.Request) {
	s, _ := u.current(r)
	if s == nil {
		writeError(w, http.StatusUnauthorized, "login_required", "sign in with an admin key")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		if !checkChange(w, r, s) {
			return
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/v1/admin/" + strings.TrimPrefix(r.URL.Path, "/ui/api/")
	if r.URL.RawPath != "" {
		r2.URL.RawPath = "/v1/admin/" + strings.TrimPrefix(r.URL.RawPath, "/ui/api/")
	}
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header.Del("Cookie")
	r2.Header.Del(csrfHeader)
	r2.Header.Set("Authorization", "Bearer "+s.key)
	w.Header().Set(nowHeader, u.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	w.Header().Set("Cache-Control", "no-store")
	u.api.ServeHTTP(w, r2)
}

func (u *UI) record(r *http.Request, ev admin.Event) {
	if err := u.admin.Record(context.WithoutCancel(r.Context()), ev); err != nil {
		u.log.Error("ui: audit entry not written", "action", ev.Action, "actor", ev.Actor, "err", err)
	}
}

func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
