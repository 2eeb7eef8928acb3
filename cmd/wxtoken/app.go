package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
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
}

// Run opens the store, loads the stored tokens (serving them at once),
// starts refreshing and starts the API. It returns once the API listens.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := m.Config
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if m.store, err = bolt.Open(cfg.DataDir); err != nil {
		return err
	}
	hc := m.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Upstream.Timeout}
	}
	up := &wechat.Client{HTTP: hc, API: cfg.Upstream.API, WeCom: cfg.Upstream.WeCom}
	m.tokens, err = token.New(token.Config{
		Store:            m.store,
		Logger:           m.Logger,
		RefreshAt:        cfg.Refresh.At,
		Jitter:           cfg.Refresh.Jitter,
		Overlap:          cfg.Refresh.Overlap,
		MinForceInterval: cfg.Refresh.MinForceInterval,
		MaxBackoff:       cfg.Refresh.MaxBackoff,
		ConfigRetry:      cfg.Refresh.ConfigRetry,
		FetchTimeout:     cfg.Upstream.Timeout,
		Concurrency:      cfg.Refresh.Concurrency,
	}, credentials(cfg.Credentials, up))
	if err != nil {
		return err
	}
	if err := m.tokens.Start(ctx); err != nil {
		return fmt.Errorf("load stored tokens: %w", err)
	}
	var clients []server.Client
	for _, c := range cfg.Clients {
		clients = append(clients, server.Client{Name: c.Name, KeyHash: c.KeyHash(), Allow: c.Allow})
	}
	api, err := server.New(server.Config{Tokens: m.tokens, Clients: clients, Logger: m.Logger})
	if err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return err
	}
	m.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(m.ln) }()
	m.Logger.Info("listening", "addr", m.ln.Addr().String(), "credentials", len(cfg.Credentials), "data_dir", cfg.DataDir)
	return nil
}

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

// Close stops the API (letting requests in flight finish), the refreshes
// and the store, in that order.
func (m *Main) Close() error {
	var errs []error
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
	if m.tokens != nil {
		errs = append(errs, m.tokens.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}

// credentials turns configured credentials into the manager's.
func credentials(list []config.Credential, up *wechat.Client) []token.Credential {
	var out []token.Credential
	for _, c := range list {
		tc := token.Credential{ID: c.ID, Kind: c.Kind}
		switch {
		case c.Kind == config.KindWeCom:
			tc.Source = &token.WeComSource{Client: up, CorpID: c.CorpID, Secret: c.Secret}
			tc.Fingerprint = token.Fingerprint(c.Kind, c.CorpID, c.Secret, up.WeCom)
		case c.Mode == config.ModeClassic:
			tc.Source = &token.ClassicSource{Client: up, AppID: c.AppID, Secret: c.Secret}
			tc.Fingerprint = token.Fingerprint(c.Kind, c.AppID, c.Secret, c.Mode, up.API)
		default:
			tc.Stable = true
			tc.Source = &token.StableSource{Client: up, AppID: c.AppID, Secret: c.Secret}
			tc.Fingerprint = token.Fingerprint(c.Kind, c.AppID, c.Secret, c.Mode, up.API)
		}
		out = append(out, tc)
	}
	return out
}
