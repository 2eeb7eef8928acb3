// Package clienttest runs a real wxtoken server in the test's process,
// against the fake WeChat of package wxtest, for tests of code that uses
// package client: the tokens it hands out are checked by the fake when
// they are used, and the fake's Stats count every fetch and every dead
// token used.
//
// The server is built from the same packages as the wxtoken binary (token
// manager, kinds, HTTP API) on an in-memory store. By default it listens on
// a loopback port; with Options.InProcess it opens no socket at all, so
// that a test can run it inside a testing/synctest bubble, where hours of
// token life pass in no real time.
package clienttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// Key is the client key the server accepts, allowed every credential.
const Key = "clienttest-key-0123456789"

// App is one Official Account or Mini Program credential.
type App struct {
	ID      string   // credential id; default the AppID
	AppID   string   // wx and 16 lowercase hex digits
	Secret  string   // default "secret-" + AppID
	Mode    string   // "classic" or "stable" (default)
	Tickets []string // JS-SDK tickets to keep: "jsapi", "wx_card"
}

// Options configure Start. The zero value runs one classic credential,
// "oa", with a jsapi ticket, tokens of WeChat's real lifetime, and a
// loopback listener.
type Options struct {
	// Fake configures the fake WeChat: Lifetime and Overlap make short
	// refresh cycles.
	Fake wxtest.Config
	// Apps are the credentials; nil means DefaultApps.
	Apps []App
	// MinForceInterval is the server's refresh.min_force_interval (default
	// 1 s, so that a test may end a token and report it more than once).
	MinForceInterval time.Duration
	// InProcess opens no socket: Client serves requests in process (see
	// HandlerClient), and URL is a name no network resolves.
	InProcess bool
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// Instances is how many wxtoken instances share the store (default
	// 1), as a cluster does; URLs has each one's address.
	Instances int
	// Redis is the address of a Redis for the instances to share (with a
	// key prefix of their own); empty means an in-memory store.
	Redis string
}

// DefaultApps is the credential Options' zero value runs.
var DefaultApps = []App{{ID: "oa", AppID: "wx00000000000000c1", Mode: "classic", Tickets: []string{"jsapi"}}}

// Server is a running wxtoken server and the fake WeChat behind it.
type Server struct {
	// URL is the API's base URL, for client.New.
	URL string
	// Fake is the fake WeChat the server fetches from; it also answers
	// API calls made with the tokens (getcallbackip and the others wxtest
	// serves) and counts good and dead uses.
	Fake *wxtest.Fake
	// FakeURL is the fake WeChat's base URL ("" with InProcess; use
	// FakeClient).
	FakeURL string
	// Handler is the wxtoken API.
	Handler http.Handler
	// Apps are the credentials, defaults filled in.
	Apps []App

	// URLs are every instance's base URL, URL the first's.
	URLs []string

	inProcess bool
	instances []*instance
	store     store.Store
	fakeSrv   *http.Server // the fake's, unless InProcess
}

// Start runs a server until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New runs a server until Close, for a TestMain or an example, where
// there is no testing.TB to tie it to.
func New(opts Options) (s *Server, err error) {
	apps := slices.Clone(opts.Apps)
	if apps == nil {
		apps = slices.Clone(DefaultApps)
	}
	s = &Server{Fake: wxtest.New(opts.Fake), inProcess: opts.InProcess}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	secrets := map[string]string{}
	for i, a := range apps {
		if a.ID == "" {
			a.ID = a.AppID
		}
		if a.Secret == "" {
			a.Secret = "secret-" + a.AppID
		}
		if a.Mode == "" {
			a.Mode = "stable"
		}
		apps[i] = a
		s.Fake.AddApp(a.AppID, a.Secret)
		secrets[fmt.Sprintf("SECRET_%d", i)] = a.Secret
	}
	s.Apps = apps

	hc := s.Fake.Client()
	upstream := "https://api.weixin.qq.com"
	if !opts.InProcess {
		fln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return s, err
		}
		s.fakeSrv = &http.Server{Handler: s.Fake, ReadHeaderTimeout: 10 * time.Second}
		go s.fakeSrv.Serve(fln)
		s.FakeURL = "http://" + fln.Addr().String()
		upstream = s.FakeURL
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	cfg, err := config.Parse([]byte(yamlOf(apps, upstream, opts.MinForceInterval, opts.Fake.Overlap)),
		func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
	if err != nil {
		return s, fmt.Errorf("clienttest: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var st store.Store = memory.New()
	if opts.Redis != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rs, err := redisstore.Open(ctx, redisstore.Config{Addrs: []string{opts.Redis}, Logger: log,
			KeyPrefix: fmt.Sprintf("clienttest%d:", time.Now().UnixNano())})
		if err != nil {
			return s, fmt.Errorf("clienttest: redis: %w", err)
		}
		st = rs
	}
	s.store = st
	for range max(opts.Instances, 1) {
		in, err := startInstance(cfg, st, hc, upstream, log, opts.InProcess)
		if in != nil {
			s.instances = append(s.instances, in)
		}
		if err != nil {
			return s, err
		}
		s.URLs = append(s.URLs, in.url)
	}
	s.URL, s.Handler = s.URLs[0], s.instances[0].handler
	// Serve from the start: every token and ticket fetched (or failed
	// with a known cause), so that a test's first request does not race
	// the first fetches.
	for deadline := time.Now().Add(readyWithin); !s.ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return s, fmt.Errorf("clienttest: tokens not fetched within %s", readyWithin)
		}
	}
	return s, nil
}

// readyWithin bounds New's wait for the first tokens.
const readyWithin = 30 * time.Second

// ready reports whether every instance has every token, or knows why not.
func (s *Server) ready() bool {
	for _, in := range s.instances {
		if !in.tokens.Ready() {
			return false
		}
	}
	return true
}

// instance is one wxtoken API: its token manager and HTTP server.
type instance struct {
	tokens  *token.Manager
	handler *server.Server
	srv     *http.Server // nil with InProcess
	url     string
}

// startInstance wires one wxtoken the way the binary does (cmd/wxtoken's
// Main.Run): kinds → token manager → API, on the store st.
func startInstance(cfg *config.Config, st store.Store, hc *http.Client, upstream string, log *slog.Logger, inProcess bool) (*instance, error) {
	up := &wechat.Client{HTTP: hc, API: upstream, WeCom: upstream}
	set, err := kind.Default.Build(&kind.Env{Client: up, Store: st, Logger: log}, cfg.Credentials)
	if err != nil {
		return nil, err
	}
	in := &instance{}
	in.tokens, err = token.New(token.Config{Store: st, Logger: log, Overlap: cfg.Refresh.Overlap,
		MinForceInterval: cfg.Refresh.MinForceInterval, FetchTimeout: cfg.Upstream.Timeout}, set.Credentials)
	if err != nil {
		return nil, err
	}
	if err := in.tokens.Start(context.Background()); err != nil {
		return in, err
	}
	owner := func(id string) string {
		if snap, err := in.tokens.Snapshot(id); err == nil {
			return snap.Owner
		}
		return ""
	}
	in.handler, err = server.New(server.Config{Tokens: in.tokens, Logger: log,
		Clients: []server.Client{{Name: "clienttest", KeyHash: cfg.Clients[0].KeyHash(), Allow: []string{"*"}}},
		JSSDK:   set.JSSDK(owner)})
	if err != nil {
		return in, err
	}
	if inProcess {
		in.url = "http://wxtoken.clienttest"
		return in, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return in, err
	}
	in.srv = &http.Server{Handler: in.handler, ReadHeaderTimeout: 10 * time.Second}
	in.srv.RegisterOnShutdown(in.handler.Close) // ends the watch streams
	go in.srv.Serve(ln)
	in.url = "http://" + ln.Addr().String()
	return in, nil
}

// yamlOf is the server's configuration.
func yamlOf(apps []App, upstream string, minForce, overlap time.Duration) string {
	if minForce <= 0 {
		minForce = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nupstream: {api: %s, wecom: %s, timeout: 1s}\n", upstream, upstream)
	fmt.Fprintf(&b, "refresh: {min_force_interval: %s", minForce)
	if overlap > 0 {
		fmt.Fprintf(&b, ", overlap: %s", overlap)
	}
	b.WriteString("}\ncredentials:\n")
	for i, a := range apps {
		fmt.Fprintf(&b, "  - id: %s\n    kind: mp\n    appid: %s\n    secret: ${SECRET_%d}\n    mode: %s\n", a.ID, a.AppID, i, a.Mode)
		if len(a.Tickets) > 0 {
			fmt.Fprintf(&b, "    tickets: [%s]\n", strings.Join(a.Tickets, ", "))
		}
	}
	fmt.Fprintf(&b, "clients:\n  - {name: clienttest, key: %s, allow: [\"*\"]}\n", Key)
	return b.String()
}

// Client is the HTTP client that reaches the server: an ordinary one, or
// with InProcess one that calls Handler directly.
func (s *Server) Client() *http.Client { return s.ClientOf(0) }

// ClientOf is Client for instance i.
func (s *Server) ClientOf(i int) *http.Client {
	if s.inProcess {
		return HandlerClient(s.instances[i].handler)
	}
	return &http.Client{}
}

// FakeClient is the HTTP client that reaches the fake WeChat, whatever
// the URL's host (as wxtest.Fake.Client).
func (s *Server) FakeClient() *http.Client { return s.Fake.Client() }

// NewClient returns a client of the server with the key, closed when the
// test ends.
func (s *Server) NewClient(tb testing.TB, opts ...client.Option) *client.Client {
	tb.Helper()
	return s.NewClientOf(tb, 0, opts...)
}

// NewClientOf is NewClient for instance i.
func (s *Server) NewClientOf(tb testing.TB, i int, opts ...client.Option) *client.Client {
	tb.Helper()
	c, err := client.New(s.URLs[i], Key, append([]client.Option{client.WithHTTPClient(s.ClientOf(i))}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Close stops the servers, their token managers, the store and the fake
// WeChat.
func (s *Server) Close() {
	for _, in := range s.instances {
		if in.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			in.srv.Shutdown(ctx)
			cancel()
		} else if in.handler != nil {
			in.handler.Close()
		}
		in.tokens.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.fakeSrv != nil {
		s.fakeSrv.Close()
	}
	s.Fake.Close()
}
