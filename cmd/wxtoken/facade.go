package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// facadeServer is the WeChat-compatible listener (wechat_listen).
type facadeServer struct {
	ln     net.Listener
	h      *facade.Facade
	srv    *http.Server
	served chan error // nil until serve
}

// listenFacade binds wechat_listen, before anything is fetched, as the
// API's address is.
func listenFacade(addr string) (*facadeServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &facadeServer{ln: ln}, nil
}

// build makes the facade over tokens for the configured credentials and
// clients; those added at run time are set on fs.h as they change.
func (fs *facadeServer) build(cfg *config.Config, set *kind.Set, tokens *token.Manager, tickets func(id string) map[string]string,
	up *wechat.Client, tr http.RoundTripper, log *slog.Logger) error {
	var clients []facade.Client
	for _, c := range cfg.Clients {
		clients = append(clients, facade.Client{Name: c.Name, KeyHash: c.KeyHash(), Allow: c.Allow, SDK: c.SDK})
	}
	h, err := facade.New(facade.Config{Tokens: tokens, Credentials: set.Facade, Clients: clients,
		Tickets: tickets, Logger: log, Upstream: upstreamOf(cfg.Upstream, up), Transport: tr})
	if err != nil {
		return err
	}
	fs.h = h
	fs.srv = newHTTPServer(h, log)
	return nil
}

// serve starts serving the facade built.
func (fs *facadeServer) serve(log *slog.Logger) {
	fs.served = make(chan error, 1)
	go func() { fs.served <- fs.srv.Serve(fs.ln) }()
	log.Info("wechat facade listening", "addr", fs.ln.Addr().String())
}

// upstreamOf is where calls forwarded for a token of family fam go: WeCom's
// host, or the API host the failover has made active.
func upstreamOf(c config.Upstream, up *wechat.Client) func(fam facade.Family) string {
	hosts := append([]string{c.API}, c.APIFailover...)
	return func(fam facade.Family) string {
		if fam == facade.WeCom {
			return c.WeCom
		}
		for i, u := range up.Upstreams() { // the primary first, then APIFailover in order
			if u.Active && i < len(hosts) {
				return hosts[i]
			}
		}
		return c.API
	}
}

// proxyTarget is where /v1/proxy sends a credential's calls: the host of
// its kind's WeChat API (WeCom's, or the API host the failover has made
// active), with its token as access_token, or as component_access_token
// for a third-party platform.
func proxyTarget(c config.Upstream, up *wechat.Client) server.ProxyTarget {
	host := upstreamOf(c, up)
	return func(s *token.Snapshot) (*url.URL, string, bool) {
		fam, param := facade.MP, "access_token"
		switch s.Kind {
		case component.KindAuthorizer: // an account's token
		case component.KindAuthCorp: // a corp's token, on WeCom's host
			fam = facade.WeCom
		default:
			k, ok := kind.Default.Lookup(s.Kind)
			switch {
			case !ok:
				return nil, "", false
			case k.Proxy != nil:
				fam, param = k.Proxy.Host, k.Proxy.Param
			case k.Facade == "":
				return nil, "", false
			default:
				fam = k.Facade
			}
		}
		base, err := url.Parse(host(fam))
		if err != nil || base.Host == "" {
			return nil, "", false
		}
		if fam == facade.Component {
			param = "component_access_token"
		}
		return base, param, true
	}
}

// close stops the facade, letting requests in flight finish.
func (fs *facadeServer) close(shutdown func(*http.Server) error) error {
	if fs.served == nil {
		return fs.ln.Close()
	}
	err := shutdown(fs.srv)
	if e := <-fs.served; e != nil && !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// WeChatAddr is the facade's address once Run has returned, "" without
// wechat_listen.
func (m *Main) WeChatAddr() string {
	if m.facade == nil {
		return ""
	}
	return m.facade.ln.Addr().String()
}
