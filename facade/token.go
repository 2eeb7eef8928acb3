package facade

import (
	"context"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// tokenAnswer is cgi-bin/token's and cgi-bin/stable_token's answer.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// wecomAnswer is cgi-bin/gettoken's answer, which WeCom sends with an
// errcode of 0.
type wecomAnswer struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// serve answers credential cr's current token to client c at ep, and
// remembers it as handed out.
func (f *Facade) serve(r *http.Request, c *client, cr Credential, ep endpoint) (*token.Snapshot, int64, *Error) {
	snap, e := f.current(r, cr.ID)
	if e != nil {
		return nil, 0, e
	}
	f.handedOut(snap, cr.Family, c.sdk)
	return snap, expiresIn(snap, time.Now(), c.sdk, ep), nil
}

// handedOut records snap's token as handed out to a client of sdk.
func (f *Facade) handedOut(snap *token.Snapshot, fam Family, sdk string) {
	f.issued.note(snap.Token, issuedToken{id: snap.ID, family: fam, owner: snap.Owner, expires: snap.ExpiresAt, sdk: sdk})
}

// grantType checks grant_type, which WeChat requires to be
// client_credential.
func grantType(v string) *Error {
	if v != "client_credential" {
		return &Error{Code: CodeInvalidGrant, Msg: "invalid grant_type"}
	}
	return nil
}

// classicToken answers GET /cgi-bin/token?grant_type=client_credential&appid=&secret=.
func (f *Facade) classicToken(r *http.Request) (any, *Error) {
	if e := method(r, http.MethodGet); e != nil {
		return nil, e
	}
	q := r.URL.Query()
	if e := grantType(q.Get("grant_type")); e != nil {
		return nil, e
	}
	c, cr, e := f.resolve(MP, q.Get("appid"), q.Get("secret"), CodeInvalidSecret)
	if e != nil {
		return nil, e
	}
	snap, in, e := f.serve(r, c, cr, classicToken)
	if e != nil {
		return nil, e
	}
	return tokenAnswer{snap.Token, in}, nil
}

// stableRequest is the body of POST /cgi-bin/stable_token.
type stableRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// stableToken answers POST /cgi-bin/stable_token. force_refresh is never
// passed on: WeChat allows 20 a day, and every SDK instance forcing its
// own would spend them and knock the others' token out. It is taken as a
// report of the current token instead: the manager checks it with WeChat
// (a call that costs no token quota) and fetches only if WeChat refuses
// it, once however many clients report together.
func (f *Facade) stableToken(r *http.Request) (any, *Error) {
	if e := method(r, http.MethodPost); e != nil {
		return nil, e
	}
	var req stableRequest
	if e := decodeJSON(r, f.maxBody, &req); e != nil {
		return nil, e
	}
	if e := grantType(req.GrantType); e != nil {
		return nil, e
	}
	c, cr, e := f.resolve(MP, req.AppID, req.Secret, CodeInvalidSecret)
	if e != nil {
		return nil, e
	}
	if req.ForceRefresh {
		snap, e := f.report(r, c, cr)
		if e != nil {
			return nil, e
		}
		return tokenAnswer{snap.Token, expiresIn(snap, time.Now(), c.sdk, stableToken)}, nil
	}
	snap, in, e := f.serve(r, c, cr, stableToken)
	if e != nil {
		return nil, e
	}
	return tokenAnswer{snap.Token, in}, nil
}

// report reports the current token of cr as dead for client c, and
// returns the token to use now.
func (f *Facade) report(r *http.Request, c *client, cr Credential) (*token.Snapshot, *Error) {
	cur, e := f.current(r, cr.ID)
	if e != nil {
		return nil, e
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
	defer cancel()
	snap, res, err := f.tokens.Report(ctx, cr.ID, cur.Token)
	result := res.String()
	if err != nil {
		result = err.Error()
	}
	f.log.Info("token reported", "client", c.name, "credential", cr.ID, "via", "stable_token force_refresh", "result", result)
	if err != nil {
		return nil, tokenError(err)
	}
	f.handedOut(snap, cr.Family, c.sdk)
	return snap, nil
}

// wecomToken answers GET /cgi-bin/gettoken?corpid=&corpsecret=.
func (f *Facade) wecomToken(r *http.Request) (any, *Error) {
	if e := method(r, http.MethodGet); e != nil {
		return nil, e
	}
	q := r.URL.Query()
	c, cr, e := f.resolve(WeCom, q.Get("corpid"), q.Get("corpsecret"), CodeInvalidCred)
	if e != nil {
		return nil, e
	}
	snap, in, e := f.serve(r, c, cr, wecomToken)
	if e != nil {
		return nil, e
	}
	return wecomAnswer{0, "ok", snap.Token, in}, nil
}
