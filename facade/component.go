package facade

import (
	"errors"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/token"
)

// componentRequest is the body of POST api_component_token.
type componentRequest struct {
	AppID  string `json:"component_appid"`
	Secret string `json:"component_appsecret"`
	// Ticket is whatever ticket the SDK holds, often none or a stale
	// one: wxtoken receives the pushed tickets itself, so it is ignored.
	Ticket *string `json:"component_verify_ticket"`
}

// componentAnswer is api_component_token's answer.
type componentAnswer struct {
	Token     string `json:"component_access_token"`
	ExpiresIn int64  `json:"expires_in"`
}

// componentToken answers POST /cgi-bin/component/api_component_token
// with the platform's current component token.
func (f *Facade) componentToken(r *http.Request) (any, *Error) {
	if e := method(r, http.MethodPost); e != nil {
		return nil, e
	}
	var req componentRequest
	if e := decodeJSON(r, f.maxBody, &req); e != nil {
		return nil, e
	}
	c, cr, e := f.resolve(Component, req.AppID, req.Secret, CodeInvalidSecret)
	if e != nil {
		return nil, e
	}
	snap, in, e := f.serve(r, c, cr, componentToken)
	if e != nil {
		return nil, e
	}
	return componentAnswer{snap.Token, in}, nil
}

// authorizerRequest is the body of POST api_authorizer_token.
type authorizerRequest struct {
	ComponentAppID  string `json:"component_appid"`
	AuthorizerAppID string `json:"authorizer_appid"`
	RefreshToken    string `json:"authorizer_refresh_token"`
}

// authorizerAnswer is api_authorizer_token's answer.
type authorizerAnswer struct {
	Token        string `json:"authorizer_access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"authorizer_refresh_token"`
}

// authorizerToken answers POST
// /cgi-bin/component/api_authorizer_token?component_access_token= with
// the authorizer's current token. WeChat authenticates this call by the
// component token alone (with it, a platform may list every authorizer's
// refresh token: api_get_authorizer_list), so the holder of a component
// token the facade issued may have the tokens of that platform's
// authorizers. The refresh token wxtoken holds is never sent: the answer
// echoes the one the SDK sent, so that it stores nothing new, and no one
// but wxtoken can mint the authorizer's tokens (each mint would end the
// one wxtoken serves).
func (f *Facade) authorizerToken(r *http.Request) (any, *Error) {
	if e := method(r, http.MethodPost); e != nil {
		return nil, e
	}
	q := r.URL.Query()
	tok := q.Get("component_access_token")
	if tok == "" {
		tok = q.Get("access_token") // the newer name
	}
	it, e := f.holder(r, tok, Component)
	if e != nil {
		return nil, e
	}
	var req authorizerRequest
	if e := decodeJSON(r, f.maxBody, &req); e != nil {
		return nil, e
	}
	if !f.names(req.ComponentAppID, it.id, Component) {
		return nil, &Error{Code: CodeInvalidAppID, Msg: "invalid appid: component_appid is not the platform of this component_access_token"}
	}
	if req.AuthorizerAppID == "" {
		return nil, &Error{Code: CodeAppIDMissing, Msg: "authorizer_appid missing"}
	}
	id := component.AuthorizerID(it.id, req.AuthorizerAppID)
	if s, err := f.tokens.Snapshot(id); err != nil || s.Owner != it.id {
		return nil, &Error{Code: CodeNotAuthorized, Msg: "component is not authorized by this account"}
	}
	snap, e := f.current(r, id)
	if e != nil {
		return nil, e
	}
	f.handedOut(snap, MP, it.sdk)
	return authorizerAnswer{snap.Token, expiresIn(snap, time.Now(), it.sdk, authorizerToken), req.RefreshToken}, nil
}

// names reports whether appid is the appid of credential id, of family
// fam.
func (f *Facade) names(appid, id string, fam Family) bool {
	for _, cr := range f.idx.Load().byAppID[appid] {
		if cr.ID == id && cr.Family == fam {
			return true
		}
	}
	return false
}

// holder returns what tok, presented to an endpoint that takes tokens of
// family fam, was issued as: a token the facade (or another wxtoken
// instance) handed out, not yet expired.
func (f *Facade) holder(r *http.Request, tok string, fam Family) (issuedToken, *Error) {
	if tok == "" {
		return issuedToken{}, &Error{Code: CodeTokenMissing, Msg: "access_token missing"}
	}
	it, ok := f.issued.lookup(r.Context(), tok)
	switch {
	case !ok:
		return issuedToken{}, &Error{Code: CodeInvalidCred, Msg: "invalid credential, access_token is invalid or not latest: not a token wxtoken issued"}
	case !it.expires.After(time.Now()):
		return issuedToken{}, &Error{Code: CodeTokenExpired, Msg: "access_token expired"}
	case it.family != fam:
		return issuedToken{}, &Error{Code: CodeInvalidToken, Msg: "invalid access_token: a token of another kind of account"}
	}
	if _, err := f.tokens.Snapshot(it.id); errors.Is(err, token.ErrUnknown) {
		return issuedToken{}, &Error{Code: CodeInvalidCred, Msg: "invalid credential, access_token is invalid or not latest"}
	}
	return it, nil
}
