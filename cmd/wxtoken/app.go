package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxtoken/wxtoken/admin"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/gateway"
	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/metrics"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Main is one running wxtoken: store, token manager and HTTP API. Tests
// drive it with Config.Listen set to "127.0.0.1:0".
type Main struct {
	Config *config.Config
	Logger *slog.Logger
	// HTTP is the client for WeChat; nil means one with the configured
	// timeout.
	HTTP *http.Client

	store  store.Store
	tokens *token.Manager
	srv    *http.Server
	ln     net.Listener
	served chan error
	// stopHealth and healthDone stop and await the API hosts' health
	// checks, run when there are failover hosts.
	stopHealth context.CancelFunc
	healthDone chan struct{}
	debug      *debugServer  // with debug.listen set
	metrics    *debugServer  // with metrics.listen set
	facade     *facadeServer // with wechat_listen set
	admin      *admin.Admin  // credentials and clients added at run time
	gc         *gcTuner      // nil with GOGC set

	// gateway delivers pushed messages, with callback.forward rules.
	gateway *gateway.Gateway
}

// Run binds the API's address, opens the store, loads the stored tokens
// (serving them at once), starts refreshing and starts the API. It returns
// once the API listens.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := m.Config
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	// The address first: when it is taken, nothing has been fetched (each
	// fetch counts against WeChat's daily quota) and no data file created.
	if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return err
	}
	if cfg.WeChatListen != "" {
		if m.facade, err = listenFacade(cfg.WeChatListen); err != nil {
			return fmt.Errorf("wechat_listen: %w", err)
		}
	}
	if cfg.Debug.Listen != "" {
		if m.debug, err = startDebug(cfg.Debug.Listen, m.Logger); err != nil {
			return fmt.Errorf("debug.listen: %w", err)
		}
	}
	st, err := openSealedStore(ctx, cfg.Store, cfg.DataDir, m.Logger)
	if err != nil {
		return err
	}
	m.store = metrics.NewStore(st, reg)
	hc := m.HTTP
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// As many fetches as refresh.concurrency run at once, all to one
		// host: keep that many connections between them, not net/http's
		// default two, or a burst of fetches (a platform's authorizers
		// coming due together) dials, and handshakes TLS, for most calls.
		tr.MaxIdleConnsPerHost = max(cfg.Refresh.Concurrency, defaultConcurrency)
		hc = &http.Client{Timeout: cfg.Upstream.Timeout, Transport: tr}
	}
	up := &wechat.Client{HTTP: hc, API: cfg.Upstream.API, APIFailover: cfg.Upstream.APIFailover, WeCom: cfg.Upstream.WeCom}
	if len(cfg.Upstream.APIFailover) > 0 {
		var hctx context.Context
		hctx, m.stopHealth = context.WithCancel(context.Background())
		m.healthDone = make(chan struct{})
		go func() {
			defer close(m.healthDone)
			up.RunHealthChecks(hctx, 30*time.Second)
		}()
	}
	env := &kind.Env{Client: up, Store: m.store, Logger: m.Logger}
	set, err := kind.Default.Build(env, cfg.Credentials)
	if err != nil {
		return err
	}
	m.tokens, err = token.New(token.Config{
		Store:            m.store,
		Logger:           m.Logger,
		Observer:         metrics.New(reg),
		RefreshAt:        cfg.Refresh.At,
		Jitter:           cfg.Refresh.Jitter,
		Overlap:          cfg.Refresh.Overlap,
		MinForceInterval: cfg.Refresh.MinForceInterval,
		ServeWait:        cfg.Refresh.ServeWait,
		ForceBudget:      cfg.Refresh.ForceBudget,
		MaxBackoff:       cfg.Refresh.MaxBackoff,
		ConfigRetry:      cfg.Refresh.ConfigRetry,
		FetchTimeout:     cfg.Upstream.Timeout,
		Concurrency:      cfg.Refresh.Concurrency,
		LockTTL:          cfg.Refresh.LockTTL,
		Resync:           cfg.Refresh.Resync,
	}, set.Credentials)
	if err != nil {
		return err
	}
	apiPlatforms, err := m.load(ctx, set)
	if err != nil {
		return err
	}
	var clients []server.Client
	for _, c := range cfg.Clients {
		clients = append(clients, server.Client{Name: c.Name, KeyHash: c.KeyHash(), Allow: c.Allow, Import: c.Import})
	}
	reg.MustRegister(metrics.NewCollector(m.tokens).WithProbes(metrics.Probes{
		Store: func(ctx context.Context) error {
			_, err := m.store.Get(ctx, "probe")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		},
		Upstreams: up.Upstreams,
		Tickets: func(ctx context.Context) map[string]metrics.Ticket {
			out := make(map[string]metrics.Ticket, len(set.Platforms))
			for id, p := range set.Platforms {
				if t, err := p.Ticket(ctx); err == nil {
					out[id] = metrics.Ticket{Kind: p.Kind(), ReceivedAt: t.ReceivedAt, Usable: t.Usable}
				}
			}
			return out
		},
	}))
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)})
	var apiMetrics http.Handler
	if cfg.Metrics.Listen == "" {
		apiMetrics = metricsHandler
	} else {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metricsHandler)
		if m.metrics, err = startSide(cfg.Metrics.Listen, mux, "metrics", m.Logger); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
	}
	var api *server.Server
	if err := m.startGateway(cfg, set, reg); err != nil {
		return err
	}
	m.admin, err = admin.New(admin.Config{Store: m.store, Tokens: m.tokens, File: cfg, Logger: m.Logger,
		Build:          buildCredential(env),
		ClearQuota:     func(ctx context.Context, cr config.Credential) error { return up.ClearQuota(ctx, cr.AppID, cr.Secret) },
		SetClients:     func(list []admin.Client) { m.setClients(api, list) },
		SetCredentials: m.setFacadeCredentials,
		Platforms:      adminPlatforms(set), Upstreams: up.Upstreams, DeadLetters: m.deadLetters()})
	if err != nil {
		return err
	}
	dash, err := dashboard(cfg, m.admin, m.Logger)
	if err != nil {
		return err
	}
	api, err = server.New(server.Config{Tokens: m.tokens, Clients: clients, Logger: m.Logger, Admin: m.admin.Handler(), UI: dash,
		Callbacks: set.Callbacks, CallbackModes: kind.Default.CallbackModes(), MaxSkew: cfg.Callbacks.MaxSkew,
		Claims: m.store, Platforms: apiPlatforms, Warnings: ticketGaps(set), Upstreams: up.Upstreams, JSSDK: m.jssdk(set),
		Metrics: apiMetrics, ProxyTarget: proxyTarget(cfg.Upstream, up), ProxyTransport: hc.Transport,
		Observer: apiObserver(cfg.Metrics, reg)})
	if err != nil {
		return err
	}
	if m.facade != nil {
		if err := m.facade.build(cfg, set, m.tokens, m.tickets(set), up, hc.Transport, m.Logger); err != nil {
			return err
		}
	}
	// Credentials and clients added at run time, before anything serves.
	if err := m.admin.Start(ctx); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	m.srv = newHTTPServer(api, m.Logger)
	m.srv.RegisterOnShutdown(api.Close)
	if m.facade != nil {
		m.facade.serve(m.Logger)
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(m.ln) }()
	m.Logger.Info("listening", "addr", m.ln.Addr().String(), "credentials", len(cfg.Credentials), "data_dir", cfg.DataDir)
	releaseLoadGarbage()
	m.gc = startGCTuner(cfg.Memory.GCPercent)
	return nil
}

// apiObserver counts the API's requests, unless c turns that off.
func apiObserver(c config.Metrics, reg prometheus.Registerer) server.Observer {
	if !c.APIEnabled() {
		return nil // not a nil *metrics.API: the server would call it
	}
	return metrics.NewAPI(reg)
}

// newHTTPServer is the HTTP server of a listener business servers call
// (the API, the WeChat-compatible facade): bounded reads and headers, and
// a write timeout long enough for a report that waits on a refresh.
// (Watch streams set their own write deadlines.)
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// bigHeap is the resident heap above which releaseLoadGarbage collects:
// below it, a start had little to load, and a forced collection would
// only make it slower.
const bigHeap = 64 << 20

// releaseLoadGarbage returns the heap's garbage to the system once the
// API listens, if the heap grew large. Loading is the one moment the heap
// holds much garbage at once: each stored value read, decoded and dropped
// under a relaxed collector (see load); the runtime's background
// scavenger would hand it back only gradually.
func releaseLoadGarbage() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapSys-ms.HeapReleased >= bigHeap {
		debug.FreeOSMemory()
	}
}

// load loads every stored record: the configured credentials' and each
// platform's authorizers'. What it decodes is mostly kept (a platform may
// hold 100,000 authorizers), so the collector, which would run several
// times to find little garbage, runs less often until it is done.
func (m *Main) load(ctx context.Context, set *kind.Set) (map[string]server.Platform, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	if err := m.tokens.Start(ctx); err != nil {
		return nil, fmt.Errorf("load stored tokens: %w", err)
	}
	platforms := map[string]server.Platform{}
	for id, p := range set.Platforms {
		if err := p.Start(ctx, m.tokens); err != nil {
			return nil, err
		}
		platforms[id] = p
	}
	return platforms, nil
}

// buildCredential builds a credential added at run time with its kind, as
// the file's are built.
func buildCredential(env *kind.Env) func(config.Credential) (admin.Built, error) {
	return func(cr config.Credential) (admin.Built, error) {
		set, err := kind.Default.Build(env, []config.Credential{cr})
		if err != nil {
			return admin.Built{}, err
		}
		if len(set.Credentials) != 1 || len(set.Platforms) > 0 {
			return admin.Built{}, fmt.Errorf("kind %s cannot be added at run time", cr.Kind)
		}
		return admin.Built{Credential: set.Credentials[0], JSSDK: set.JSSDK(func(string) string { return "" })(cr.ID),
			Facade: set.Facade}, nil
	}
}

// setClients installs the clients in force on the API and the facade.
func (m *Main) setClients(api *server.Server, list []admin.Client) {
	sc := make([]server.Client, len(list))
	fc := make([]facade.Client, len(list))
	for i, c := range list {
		sc[i] = server.Client{Name: c.Name, KeyHash: c.KeyHash, Allow: c.Allow, Import: c.Import, Until: c.Until}
		fc[i] = facade.Client{Name: c.Name, KeyHash: c.KeyHash, Allow: c.Allow, SDK: c.SDK, Until: c.Until}
	}
	api.SetClients(sc)
	if m.facade != nil && m.facade.h != nil {
		if err := m.facade.h.SetClients(fc); err != nil {
			m.Logger.Error("facade: clients not updated", "err", err)
		}
	}
}

// setFacadeCredentials has the facade serve the credentials added at run
// time.
func (m *Main) setFacadeCredentials(list []admin.Built) {
	if m.facade == nil || m.facade.h == nil {
		return
	}
	var fc []facade.Credential
	for _, b := range list {
		fc = append(fc, b.Facade...)
	}
	if err := m.facade.h.SetCredentials(fc); err != nil {
		m.Logger.Error("facade: credentials not updated", "err", err)
	}
}

// tickets is the facade's lookup of a credential's tickets, ticket type →
// ticket credential id, from the JS-SDK lookup.
func (m *Main) tickets(set *kind.Set) func(id string) map[string]string {
	jssdk := m.jssdk(set)
	return func(id string) map[string]string {
		if j := jssdk(id); j != nil {
			return j.Tickets
		}
		return nil
	}
}

// jssdk looks a credential's JS-SDK up in the file's, then in those added
// at run time.
func (m *Main) jssdk(set *kind.Set) func(id string) *server.JSSDK {
	file := set.JSSDK(m.owner)
	return func(id string) *server.JSSDK {
		if j := file(id); j != nil {
			return j
		}
		return m.admin.JSSDK(id)
	}
}

// owner is the platform that owns credential id, "" if none.
func (m *Main) owner(id string) string {
	s, err := m.tokens.Snapshot(id)
	if err != nil {
		return ""
	}
	return s.Owner
}

// defaultConcurrency is token.Config's default Concurrency.
const defaultConcurrency = 16

// Addr is the API's address once Run has returned.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Wait blocks until the HTTP server stops on its own or ctx is done.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case err := <-m.served:
		return err
	case <-ctx.Done():
		return nil
	}
}

// Close stops the API (letting requests in flight finish), the upstream
// health checks, the refreshes and the store, in that order.
func (m *Main) Close() error {
	var errs []error
	m.gc.stop()
	m.gc = nil
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	} else if m.ln != nil {
		m.ln.Close()
	}
	if m.metrics != nil {
		errs = append(errs, m.metrics.close())
	}
	if m.facade != nil {
		errs = append(errs, m.facade.close(func(s *http.Server) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s.Shutdown(ctx)
		}))
	}
	if m.debug != nil {
		errs = append(errs, m.debug.close())
	}
	if m.stopHealth != nil {
		m.stopHealth()
		<-m.healthDone
	}
	if m.gateway != nil {
		errs = append(errs, m.gateway.Close())
	}
	if m.admin != nil {
		m.admin.Close()
	}
	if m.tokens != nil {
		errs = append(errs, m.tokens.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}

// openStore opens the configured store: the embedded file, or Redis. On
// failure it returns a nil store.Store, never a nil *bolt.Store or
// *redis.Store inside a non-nil interface, which Close would panic on.
func openStore(ctx context.Context, c config.Store, dataDir string, log *slog.Logger) (store.Store, error) {
	if c.Type != config.StoreRedis {
		s, err := bolt.Open(dataDir)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	rc := redisstore.Config{Addrs: c.Addrs, Username: c.Username, Password: c.Password, DB: c.DB,
		MasterName: c.MasterName, Cluster: c.Cluster, KeyPrefix: c.KeyPrefix,
		AllowNoPersistence: c.AllowNoPersistence, Logger: log}
	if c.TLS {
		rc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, rc)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ticketGaps reports each platform whose pushed ticket is missing, refused,
// expired or late, for /readyz. A WeCom suite's suite_ticket lives 30
// minutes and no API asks WeCom for another, so its gap must reach an
// operator before the suite's token, and every corp's, can no longer be
// fetched.
func ticketGaps(set *kind.Set) func(ctx context.Context) []string {
	return func(ctx context.Context) []string {
		var out []string
		now := time.Now()
		for id, p := range set.Platforms {
			t, err := p.Ticket(ctx)
			if err != nil {
				out = append(out, id+": ticket not read: "+err.Error())
			} else if gap := t.Gap(now); gap != "" {
				out = append(out, id+" ("+p.Kind()+"): "+gap)
			}
		}
		slices.Sort(out)
		return out
	}
}
