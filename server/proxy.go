package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxtoken/wxtoken/relay"
	"github.com/wxtoken/wxtoken/token"
)

// /v1/proxy/{id}/<WeChat API path> lets a business server call WeChat
// without ever handling a token: wxtoken adds the credential's current
// token (access_token, or component_access_token for a platform), sends
// the call to WeChat's host for the credential's kind, and when WeChat
// refuses the token (40001, 42001, 40014) reports it and makes the call
// once more with the new one (package relay). Only paths under WeChat's
// API prefixes go through, never a token endpoint or a call that carries
// a secret: the proxy calls out from the address WeChat's IP whitelist
// trusts, and must not be an open relay.

// ProxyTarget is where the calls of a credential go: WeChat's host for it
// and the query parameter its token goes in. ok is false for a credential
// with no API to call (a ticket).
type ProxyTarget func(s *token.Snapshot) (base *url.URL, param string, ok bool)

// apiPrefixes are the first segments of WeChat's API paths (Official
// Accounts, Mini Programs, the Open Platform, WeCom) that the proxy
// forwards.
var apiPrefixes = map[string]bool{
	"cgi-bin": true, "wxa": true, "wxaapi": true, "datacube": true, "card": true, "merchant": true,
	"customservice": true, "semantic": true, "shakearound": true, "tcb": true, "wxopen": true,
	"channels": true, "product": true, "union": true, "intp": true, "scan": true, "mall": true,
	"componenttcb": true, "express": true, "shop": true, "wxagame": true, "marketing": true,
}

// tokenEndpoints are API paths that fetch tokens with a secret: never
// forwarded (they would spend the quota, or end the token wxtoken serves).
var tokenEndpoints = map[string]bool{
	"/cgi-bin/token": true, "/cgi-bin/stable_token": true, "/cgi-bin/gettoken": true,
	"/cgi-bin/component/api_component_token": true, "/cgi-bin/component/api_authorizer_token": true,
	"/cgi-bin/component/api_query_auth": true, "/cgi-bin/component/api_start_push_ticket": true,
	"/cgi-bin/service/get_suite_token": true, "/cgi-bin/service/get_provider_token": true,
	"/cgi-bin/service/get_corp_token": true,
	// A suite's auth codes are good once: spent through the proxy, the
	// corp's permanent code would never reach wxtoken.
	"/cgi-bin/service/get_permanent_code": true, "/cgi-bin/service/v2/get_permanent_code": true,
}

// secretParams are query parameters that carry a secret.
var secretParams = []string{"secret", "appsecret", "corpsecret", "component_appsecret", "suite_secret", "provider_secret"}

// splitProxyPath splits what follows /v1/proxy/ into the credential id
// and the API path: the id is every segment before the first API prefix
// ({id}, or {platform}/{appid} for an authorizer).
func splitProxyPath(rest string) (id, path string, err error) {
	segs := strings.Split(rest, "/")
	for i, seg := range segs {
		if apiPrefixes[seg] && i > 0 {
			id, path = strings.Join(segs[:i], "/"), "/"+strings.Join(segs[i:], "/")
			break
		}
	}
	switch {
	case id == "":
		return "", "", &badRequest{"want /v1/proxy/{id}/<WeChat API path>, the path under one of WeChat's API prefixes (cgi-bin, wxa, datacube, …)"}
	case strings.Contains(rest, "//") || strings.Contains("/"+rest+"/", "/../") || strings.Contains("/"+rest+"/", "/./"):
		return "", "", &badRequest{"the path must not hold empty, . or .. segments"}
	case tokenEndpoints[path]:
		return "", "", &badRequest{path + " fetches a token with a secret: wxtoken does that, not its callers"}
	}
	return id, path, nil
}

// proxyCall answers /v1/proxy/{rest...}.
func (s *Server) proxyCall(w http.ResponseWriter, r *http.Request) error {
	if s.proxy == nil {
		return errNotFound
	}
	id, path, err := splitProxyPath(r.PathValue("rest"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for _, p := range secretParams {
		if q.Has(p) {
			return &badRequest{fmt.Sprintf("the call carries a secret (%s): the proxy forwards calls made with a token only", p)}
		}
	}
	if _, err := s.authorizeToken(r, id); err != nil {
		return err
	}
	snap, err := s.current(r, id)
	if err != nil {
		return err
	}
	base, param, ok := s.proxyTarget(snap)
	if !ok {
		return &badRequest{fmt.Sprintf("%s is a credential of kind %s, which has no API to call", snap.ID, snap.Kind)}
	}
	s.proxy.Forward(w, r, relay.Call{ID: snap.ID, Base: base, Path: path, Param: param, Token: snap.Token})
	return nil
}

// newProxy returns the relay of /v1/proxy.
func (s *Server) newProxy(tr http.RoundTripper) *relay.Relay {
	return &relay.Relay{Transport: tr, Logger: s.log, Via: "proxy",
		Renew: func(ctx context.Context, c relay.Call) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			snap, _, err := s.tokens.Report(ctx, c.ID, c.Token)
			if err != nil {
				return "", err
			}
			return snap.Token, nil
		},
		Failed: func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, errUnreachable)
		}}
}
