package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/relay"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Tokens is what the API needs of the token manager.
type Tokens interface {
	Token(id string) (*token.Snapshot, error)
	Snapshot(id string) (*token.Snapshot, error)
	Report(ctx context.Context, id, stale string) (*token.Snapshot, token.Result, error)
	Await(ctx context.Context, id string) (*token.Snapshot, error)
	IDs() []string
	Ready() bool
}

var _ Tokens = (*token.Manager)(nil)

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Tokens serves and refreshes tokens. Required.
	Tokens Tokens
	// Clients are the keys the API accepts.
	Clients []Client
	// Logger receives the audit trail of reports; nil means slog.Default().
	Logger *slog.Logger
	// MaxBody bounds request bodies (default 4 KiB: a report is one token).
	MaxBody int64
	// ReportTimeout bounds how long a report waits for its refresh
	// (default 30s); the refresh itself goes on for the other waiters.
	ReportTimeout time.Duration
	// Callbacks are the endpoints WeChat calls.
	Callbacks []Callback
	// MaxSkew is the accepted distance of a callback's timestamp from our
	// clock, either way (default 5m).
	MaxSkew time.Duration
	// Claims records the pushes accepted while their timestamps would
	// still pass, so that a replay is refused. Give it the store, so that
	// the next process, and every instance sharing the store, refuses it
	// too; nil keeps the record in this process's memory only.
	Claims store.Claimer
	// Platforms are the third-party platforms, by credential id.
	Platforms map[string]Platform
	// Warnings are what /readyz reports besides readiness: gaps an
	// operator must act on before they stop the service (a WeCom suite
	// whose suite_ticket pushes stopped). Nil for none.
	Warnings func(ctx context.Context) []string
	// Upstreams reports WeChat's hosts and which one is in use; nil
	// leaves GET /v1/upstreams empty.
	Upstreams func() []wechat.UpstreamStatus
	// CallbackModes are the kinds WeChat calls back, and how: the routes
	// /callback/{kind}/{id} exist for these kinds only.
	CallbackModes []CallbackMode
	// JSSDK returns the tickets and signing ids of a credential, nil if
	// it has no tickets; nil means no credential has.
	JSSDK func(id string) *JSSDK
	// Metrics, if set, is served at GET /metrics, to anyone: Prometheus
	// scrapes without a key. It shows credential ids and states, never a
	// token or a secret.
	Metrics http.Handler
	// ProxyTarget, if set, serves /v1/proxy/{id}/<WeChat API path>: where
	// each credential's calls go.
	ProxyTarget ProxyTarget
	// ProxyTransport makes the proxy's calls to WeChat; nil means
	// http.DefaultTransport.
	ProxyTransport http.RoundTripper
	// Admin, if set, serves everything under /v1/admin/, with its own
	// keys: client keys do not open it.
	Admin http.Handler
	// UI, if set, serves the dashboard under /ui/.
	UI http.Handler
	// WatchHeartbeat is how often an idle watch stream sends a comment
	// (default 15s).
	WatchHeartbeat time.Duration
	// WatchesPerClient bounds the watch streams one client keeps open
	// (default 64).
	WatchesPerClient int
	// Observer, if set, is told of every request, token read and watch
	// stream (package metrics counts them); nil observes nothing.
	Observer Observer
}

// CallbackMode is how WeChat calls one kind's callback URL.
type CallbackMode struct {
	// Kind names the URL: /callback/{kind}/{id}.
	Kind string
	// Verify: WeChat checks the URL with a GET before saving it.
	Verify bool
	// Encrypted: every push, and the verification's echostr, is
	// encrypted (WeCom, platforms). Otherwise pushes are plain, or in
	// safe mode when the query says encrypt_type=aes (Official Accounts).
	Encrypted bool
	// Authorizers: the kind's authorizers' messages come to
	// /callback/{kind}/{id}/{appid} (a platform's "$APPID$" URL).
	Authorizers bool
	// VerifyAnyReceiver: the verification's echostr may be sealed for
	// another receive id than the pushes (a WeCom suite's is sealed for
	// the provider's corpid); only its signature is checked.
	VerifyAnyReceiver bool
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	tokens  Tokens
	clients *clientSet
	log     *slog.Logger
	maxBody int64
	timeout time.Duration
	mux     *http.ServeMux

	callbacks map[string]*Callback
	maxSkew   time.Duration
	claims    store.Claimer
	platforms map[string]Platform
	warnings  func(ctx context.Context) []string
	upstreams func() []wechat.UpstreamStatus
	endpoints []endpoint
	modes     map[string]CallbackMode
	jssdk     func(id string) *JSSDK
	hot       *hotPath
	hub       *watchHub
	obs       Observer
	anon      *client  // the Observer's counters of requests without a client
	patterns  []string // the routes' patterns, by index, for the Observer

	proxyTarget ProxyTarget
	proxy       *relay.Relay
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("server: Config.Tokens is required")
	}
	s := &Server{
		tokens:  cfg.Tokens,
		clients: newClientSet(cfg.Clients),
		log:     cfg.Logger,
		maxBody: cfg.MaxBody,
		timeout: cfg.ReportTimeout,
		mux:     http.NewServeMux(),

		callbacks: map[string]*Callback{},
		maxSkew:   cfg.MaxSkew,
		claims:    cfg.Claims,
		platforms: cfg.Platforms,
		warnings:  cfg.Warnings,
		upstreams: cfg.Upstreams,
		modes:     map[string]CallbackMode{},
		jssdk:     cfg.JSSDK,
		hub:       newWatchHub(cfg.WatchHeartbeat, cfg.WatchesPerClient, cfg.Observer),
		obs:       cfg.Observer,
	}
	if n, ok := cfg.Tokens.(interface{ OnChange(func(*token.Snapshot)) }); ok {
		n.OnChange(s.hub.publish)
	}
	for _, m := range cfg.CallbackModes {
		s.modes[m.Kind] = m
	}
	if s.maxSkew <= 0 {
		s.maxSkew = 5 * time.Minute
	}
	if s.claims == nil {
		s.claims = memory.New()
	}
	for i := range cfg.Callbacks {
		cb := &cfg.Callbacks[i]
		mode, ok := s.modes[cb.Kind]
		if !ok {
			return nil, fmt.Errorf("server: callback %s/%s: no CallbackMode for kind %q", cb.Kind, cb.ID, cb.Kind)
		}
		if mode.Encrypted && cb.Crypter == nil {
			return nil, fmt.Errorf("server: callback %s/%s needs a Crypter", cb.Kind, cb.ID)
		}
		s.callbacks[callbackKey(cb.Kind, cb.ID)] = cb
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = 4 << 10
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	type route struct {
		pattern   string // "METHOD /path"
		about     string
		clientKey bool // needs Authorization: Bearer <client key>
		h         func(http.ResponseWriter, *http.Request) error
	}
	routes := []route{
		{"GET /v1/tokens/{id}", "the credential's current access token", true, s.getToken},
		{"POST /v1/tokens/{id}/invalidate", `report a token WeChat refused, {"access_token":"..."}; answers the new or current one`, true, s.invalidate},
		{"GET /v1/tokens/{id}/tickets/{type}", "the credential's current JS-SDK ticket (jsapi, wx_card, agent_config)", true, s.getTicket},
		{"POST /v1/tokens/{id}/jssdk", `wx.config's signature for a page, {"url":"https://..."}`, true, s.signJSSDK},
		// A credential in a namespace: an authorizer is {platform}/{appid}.
		{"GET /v1/tokens/{ns}/{id}", "the same for a credential in a namespace: an authorizer, {platform}/{appid}", true, s.getNamespacedToken},
		{"POST /v1/tokens/{ns}/{id}/invalidate", "the same, in a namespace", true, s.invalidate},
		{"GET /v1/tokens/{ns}/{id}/tickets/{type}", "the same, in a namespace", true, s.getTicket},
		{"POST /v1/tokens/{ns}/{id}/jssdk", "the same, in a namespace", true, s.signJSSDK},
		{"GET /v1/tokens", "the state of the credentials the key may use, without tokens", true, s.listTokens},
		{"GET /v1/watch", "Server-Sent Events: each listed credential's token (or ticket, {id}/tickets/{type}) now and whenever it changes, ?ids=a,b", true, s.watch},
		{"GET /v1/upstreams", "WeChat's hosts, their health and the one in use", true, s.listUpstreams},
		{"POST /v1/components/{id}/preauthcode", "a third-party platform's pre-auth code and authorization URL", true, s.preAuthCode},
		{"GET /v1/components/{id}/authorizers", "a third-party platform's authorizers, a page at a time", true, s.listAuthorizers},
		{"POST /v1/components/{id}/authorizers", "import authorizers from another system", true, s.importAuthorizers},
	}
	for _, m := range cfg.CallbackModes {
		if m.Verify {
			routes = append(routes, route{"GET /callback/" + m.Kind + "/{id}", "WeChat's server URL verification", false, s.verifyURL(m)})
		}
		routes = append(routes, route{"POST /callback/" + m.Kind + "/{id}", "WeChat's pushes", false, s.receive(m)})
		if m.Authorizers {
			routes = append(routes, route{"POST /callback/" + m.Kind + "/{id}/{appid}", "WeChat's pushes of an authorizer's messages", false, s.receive(m)})
		}
	}
	if cfg.ProxyTarget != nil {
		s.proxyTarget = cfg.ProxyTarget
		s.proxy = s.newProxy(cfg.ProxyTransport)
		routes = append(routes,
			route{"GET /v1/proxy/{rest...}", "a WeChat API call made with the credential's token: /v1/proxy/{id}/cgi-bin/...", true, s.proxyCall},
			route{"POST /v1/proxy/{rest...}", "the same, with a body", true, s.proxyCall})
	}
	if cfg.Metrics != nil {
		routes = append(routes, route{"GET /metrics", "Prometheus metrics: credential ids and states, no tokens", false,
			func(w http.ResponseWriter, r *http.Request) error { cfg.Metrics.ServeHTTP(w, r); return nil }})
	}
	routes = append(routes,
		route{"GET /healthz", "200 while the process is up", false, s.healthz},
		route{"GET /readyz", "200 when every credential has a valid token or a known cause, else 503", false, s.readyz},
		route{"GET /{$}", "this list", false, s.index},
	)
	var patterns []string
	for i, rt := range routes {
		s.mux.Handle(rt.pattern, s.observe(i, s.handle(rt.h)))
		method, path, _ := strings.Cut(rt.pattern, " ")
		s.endpoints = append(s.endpoints, endpoint{Method: method, Path: strings.TrimSuffix(path, "{$}"), About: rt.about, ClientKey: rt.clientKey})
		patterns = append(patterns, rt.pattern)
	}
	for _, sub := range []struct {
		path, about string
		h           http.Handler
	}{
		{"/v1/admin/", "the admin API: credentials, clients, audit log (admin key)", cfg.Admin},
		{"/ui/", "the dashboard (admin login)", cfg.UI},
	} {
		if sub.h != nil {
			s.mux.Handle(sub.path, s.observe(len(patterns), sub.h))
			s.endpoints = append(s.endpoints, endpoint{Method: "*", Path: sub.path, About: sub.about})
			patterns = append(patterns, sub.path)
		}
	}
	s.mux.Handle("/", s.observe(len(patterns), s.handle(s.noRoute)))
	s.hot = newHotPath(s.endpoints)
	if s.obs != nil {
		s.observeRoutes(append(patterns, RouteUnmatched))
	}
	return s, nil
}

// SetClients replaces the clients allowed to call the API: those of the
// configuration file and those added at run time. Requests under way keep
// the set they started with; open watch streams are not ended.
func (s *Server) SetClients(list []Client) { s.clients.set(list) }

// Close ends the watch streams, which would otherwise hold an
// http.Server's Shutdown until its deadline: give it to the server's
// RegisterOnShutdown. Requests of other kinds are not affected.
func (s *Server) Close() { s.hub.close() }

// endpoint is one route as GET / lists it.
type endpoint struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	About     string `json:"about"`
	ClientKey bool   `json:"client_key"`
}

// index lists the endpoints, to anyone: the routes only, no credential
// ids, so it tells a caller without a key nothing about what is served.
func (s *Server) index(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"service": "wxtoken", "endpoints": s.endpoints})
	return nil
}

// probeMethods are the methods a path is probed with to tell a wrong
// method (405) from an unknown path (404).
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// noRoute answers a request no route took: 405 with the methods the path
// takes, if another method would have been routed, else 404. The catch-all
// "/" route that gives every miss the error shape also hides the mux's own
// 405, so the routes are asked here.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		return &methodNotAllowed{method: r.Method, allow: allow}
	}
	return errNotFound
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.hot.fastTokenID(r); ok {
		start := time.Now()
		if s.obs == nil {
			if _, err := s.serveToken(w, r, id, start); err != nil {
				s.writeError(w, r, err)
			}
			return
		}
		c, err := s.serveToken(w, r, id, start)
		status := http.StatusOK
		if err != nil {
			status = s.writeError(w, r, err)
		}
		s.observeHot(c, id, status, start)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handle adapts an error-returning handler: errors go to writeError.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authorize authenticates the request and checks that its client may use
// id, owned by owner. A client that may not see id gets 403 whether or not
// id exists, so keys cannot probe for other credentials.
func (s *Server) authorize(r *http.Request, id, owner string) (*client, error) {
	c, err := s.clients.authenticate(r)
	if err != nil {
		return nil, err
	}
	if !c.allowed(id, owner) {
		return nil, errForbidden
	}
	return c, nil
}

// authorizeToken is authorize for a token request: an authorizer may be
// allowed through its component, and asked for by its bare appid. An
// appid that several platforms hold is ambiguous to a client that may see
// one of them, and forbidden to any other. A refused client is returned
// with the error, for the Observer.
func (s *Server) authorizeToken(r *http.Request, id string) (*client, error) {
	c, err := s.clients.authenticate(r)
	if err != nil {
		return nil, err
	}
	if c.allowed(id, "") {
		return c, nil // the common case: no need to look up an owner
	}
	snap, err := s.tokens.Snapshot(id)
	if err == nil && c.allowed(snap.ID, snap.Owner) {
		return c, nil
	}
	if amb := (*token.AmbiguousError)(nil); errors.As(err, &amb) {
		var visible []string
		for _, cand := range amb.Candidates {
			if snap, err := s.tokens.Snapshot(cand); err == nil && c.allowed(cand, snap.Owner) {
				visible = append(visible, cand)
			}
		}
		if len(visible) > 0 {
			return c, &token.AmbiguousError{ID: id, Candidates: visible}
		}
	}
	return c, errForbidden
}

// tokenID is the credential id in a /v1/tokens path: {id}, or {ns}/{id}
// for a credential in a namespace (an authorizer, {platform}/{appid}).
func tokenID(r *http.Request) string {
	if ns := r.PathValue("ns"); ns != "" {
		return ns + "/" + r.PathValue("id")
	}
	return r.PathValue("id")
}

// canonical is the id of the credential that id names (id itself, or the
// namespaced id an authorizer's bare appid stands for).
func (s *Server) canonical(id string) string {
	if snap, err := s.tokens.Snapshot(id); err == nil {
		return snap.ID
	}
	return id
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request) error {
	_, err := s.serveToken(w, r, tokenID(r), time.Now())
	return err
}

// getNamespacedToken answers GET /v1/tokens/{ns}/{id}. The paths of the
// single-id POST routes also have two segments; asked with GET they are
// those routes asked with the wrong method, not an authorizer: WeChat's
// appids are never "invalidate" or "jssdk".
func (s *Server) getNamespacedToken(w http.ResponseWriter, r *http.Request) error {
	if id := r.PathValue("id"); id == "invalidate" || id == "jssdk" {
		return &methodNotAllowed{method: r.Method, allow: []string{http.MethodPost}}
	}
	return s.getToken(w, r)
}

// report is the body of POST /v1/tokens/{id}/invalidate.
type report struct {
	AccessToken string `json:"access_token"`
}

func (s *Server) invalidate(w http.ResponseWriter, r *http.Request) error {
	id := tokenID(r)
	c, err := s.authorizeToken(r, id)
	if err != nil {
		return err
	}
	var rep report
	if err := decodeJSON(w, r, s.maxBody, &rep); err != nil {
		return err
	}
	if rep.AccessToken == "" {
		return &badRequest{"access_token is required: the token that failed"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	snap, res, err := s.tokens.Report(ctx, id, rep.AccessToken)
	result := res.String()
	if err != nil {
		result = err.Error()
	}
	s.log.Info("token reported", "client", c.name, "credential", id, "result", result)
	if err != nil {
		return err
	}
	writeToken(w, snap, result)
	return nil
}

// listUpstreams shows WeChat's hosts, which is in use and how healthy
// each is, to any client.
func (s *Server) listUpstreams(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.clients.authenticate(r); err != nil {
		return err
	}
	type upstream struct {
		URL       string     `json:"url"`
		Active    bool       `json:"active"`
		Healthy   bool       `json:"healthy"`
		LastCheck *time.Time `json:"last_check,omitempty"`
		LastError string     `json:"last_error,omitempty"`
		Failovers int        `json:"failovers"`
	}
	list := []upstream{}
	if s.upstreams != nil {
		for _, u := range s.upstreams() {
			list = append(list, upstream{u.URL, u.Active, u.Healthy, utc(u.LastCheck), u.LastError, u.Failovers})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"upstreams": list})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ready := s.tokens.Ready()
	body := map[string]any{"ready": ready}
	if s.warnings != nil {
		if ws := s.warnings(r.Context()); len(ws) > 0 {
			body["warnings"] = ws
		}
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
