package wxtest

import (
	"net/http"
	"slices"
	"time"
)

// grantedScopes are the permission-set ids every authorization grants: the
// ones in the docs' api_query_auth sample.
var grantedScopes = []int{1, 2, 3}

// queryAuthRequest is the body of POST api_query_auth.
type queryAuthRequest struct {
	AppID string `json:"component_appid"`
	Code  string `json:"authorization_code"`
}

// funcScope is one entry of func_info.
type funcScope struct {
	Category struct {
		ID int `json:"id"`
	} `json:"funcscope_category"`
}

// authorizationInfo is the authorization_info object of api_query_auth.
type authorizationInfo struct {
	AuthorizerAppID string      `json:"authorizer_appid"`
	AccessToken     string      `json:"authorizer_access_token"`
	ExpiresIn       int         `json:"expires_in"`
	RefreshToken    string      `json:"authorizer_refresh_token"`
	FuncInfo        []funcScope `json:"func_info"`
}

// queryAuthReply is api_query_auth's success answer.
type queryAuthReply struct {
	Info authorizationInfo `json:"authorization_info"`
}

// authorizerTokenRequest is the body of POST api_authorizer_token.
type authorizerTokenRequest struct {
	AppID           string `json:"component_appid"`
	AuthorizerAppID string `json:"authorizer_appid"`
	RefreshToken    string `json:"authorizer_refresh_token"`
}

// authorizerTokenReply is api_authorizer_token's success answer.
type authorizerTokenReply struct {
	AccessToken  string `json:"authorizer_access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"authorizer_refresh_token"`
}

// serveQueryAuth answers POST
// /cgi-bin/component/api_query_auth?component_access_token=.., which
// exchanges an authorization code for the authorizer's first access token
// and its refresh token.
func (f *Fake) serveQueryAuth(w http.ResponseWriter, r *http.Request) {
	req, bodyErr := decodeBody[queryAuthRequest](r)
	f.count(req.AppID, func(s *Stats) { s.QueryAuthCalls++ })
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	writeJSON(w, f.queryAuth(r, req, bodyErr))
}

// queryAuth answers 61009 (code is invalid) for a code the component never
// issued, one already exchanged, and one whose authorization was withdrawn,
// and 61010 (code is expired) for one past AuthorizationCodeExpiredTime. A
// code works once: it is spent by the answer that succeeds.
func (f *Fake) queryAuth(r *http.Request, req queryAuthRequest, bodyErr error) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a, e, valid := f.componentCall(r, req.AppID, bodyErr, now)
	if !valid {
		return e
	}
	cs := a.component
	code, known := cs.codes[req.Code]
	if !known {
		return fail(codeAuthCodeInvalid)
	}
	if !now.Before(code.expires) {
		return fail(codeAuthCodeExpired)
	}
	g := cs.grants[code.authorizer]
	if g == nil || g.revoked {
		return fail(codeAuthCodeInvalid)
	}
	t, err := f.grantToken(g, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	delete(cs.codes, req.Code)
	info := authorizationInfo{
		AuthorizerAppID: code.authorizer,
		AccessToken:     t.value,
		ExpiresIn:       t.expiresIn(now),
		RefreshToken:    g.refresh,
	}
	for _, id := range grantedScopes {
		var s funcScope
		s.Category.ID = id
		info.FuncInfo = append(info.FuncInfo, s)
	}
	return queryAuthReply{Info: info}
}

// serveAuthorizerToken answers POST
// /cgi-bin/component/api_authorizer_token?component_access_token=.., the
// refresh of an authorizer's access token. Faults apply here as at the other
// token endpoints: one set for the authorizer appid wins over one for the
// component appid, which wins over one for every account.
func (f *Fake) serveAuthorizerToken(w http.ResponseWriter, r *http.Request) {
	req, bodyErr := decodeBody[authorizerTokenRequest](r)
	f.countAuthorizerCall(req)
	if f.applyFault(w, r, req.AuthorizerAppID, req.AppID) {
		return
	}
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	writeJSON(w, f.authorizerToken(r, req, bodyErr))
}

// countAuthorizerCall counts an api_authorizer_token call for its component
// and for its authorizer, when the fake knows them.
func (f *Fake) countAuthorizerCall(req authorizerTokenRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[req.AppID]; a != nil {
		a.stats.AuthorizerTokenCalls++
	}
	if a := f.accounts[req.AuthorizerAppID]; a != nil && req.AuthorizerAppID != req.AppID {
		a.stats.AuthorizerTokenCalls++
	}
}

// authorizerToken answers 61023 for every refresh token that does not work
// for this (component, authorizer) pair: unknown, replaced by rotation and
// then superseded, withdrawn by Unauthorize, or belonging to an authorizer
// that never authorized this component (the platform does not document a
// code of its own for that case). Each success issues a new access token;
// the one it replaces stays valid for Config.Overlap.
func (f *Fake) authorizerToken(r *http.Request, req authorizerTokenRequest, bodyErr error) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a, e, valid := f.componentCall(r, req.AppID, bodyErr, now)
	if !valid {
		return e
	}
	g := a.component.grants[req.AuthorizerAppID]
	if !g.accepts(req.RefreshToken) {
		return fail(codeRefreshInvalid)
	}
	// The new refresh token, if this call rotates, is minted first so that
	// a failure leaves nothing half done.
	var next string
	if every := f.rotation[a.id]; every > 0 && (g.refreshes+1)%every == 0 {
		var err error
		if next, err = f.newRefreshToken(); err != nil {
			return fail(codeSystemBusy)
		}
	}
	t, err := f.grantToken(g, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	g.refreshes++
	if req.RefreshToken == g.refresh {
		// The newest refresh token has been used: the one it replaced,
		// if any, is gone.
		g.prevRefresh = ""
	}
	if next != "" {
		g.prevRefresh, g.refresh = g.refresh, next
	}
	return authorizerTokenReply{AccessToken: t.value, ExpiresIn: t.expiresIn(now), RefreshToken: g.refresh}
}

// grantToken issues a new access token for the authorizer of g; the one it
// replaces stays valid for Config.Overlap. The caller holds f.mu.
func (f *Fake) grantToken(g *grant, now time.Time) (*token, error) {
	t, err := f.issue(g.authorizer, now)
	if err != nil {
		return nil, err
	}
	g.token.replace(now, f.cfg.overlap())
	g.token = t
	g.tokens = slices.DeleteFunc(g.tokens, func(old *token) bool { return now.Sub(old.expires) > forget })
	g.tokens = append(g.tokens, t)
	return t, nil
}

// newRefreshToken mints an authorizer_refresh_token. The caller holds f.mu.
func (f *Fake) newRefreshToken() (string, error) {
	v, err := f.randomString(refreshRandBytes)
	if err != nil {
		return "", err
	}
	return "refreshtoken@@@" + v, nil
}

// revoke ends t at now with 40001, as a withdrawn authorization does, unless
// it already ends sooner.
func revoke(t *token, now time.Time) {
	if t.dies.IsZero() || t.dies.After(now) {
		t.dies = now
	}
}
