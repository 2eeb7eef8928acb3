package facade

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxtoken/wxtoken/relay"
)

// Every other path on the facade is a WeChat API call an SDK sends to the
// same base URL as its token requests. It is forwarded to WeChat, to the
// host of the token's credential (Config.Upstream), only when it carries a
// token wxtoken issued: anything else is refused, so that the facade,
// which calls out from the address WeChat's IP whitelist trusts, is never
// an open relay. The call is made by package relay, which reports a token
// WeChat refuses (40001, 42001, 40014) and makes the call once more with
// the token to use now.

// newRelay returns the relay that carries forwarded calls.
func (f *Facade) newRelay(tr http.RoundTripper) *relay.Relay {
	return &relay.Relay{Transport: tr, MaxReplay: f.maxReplay, Logger: f.log, Via: "facade",
		Renew: f.renew,
		Failed: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, &Error{Code: CodeSystemError, Msg: "system error: WeChat could not be reached"})
		}}
}

// renew reports a forwarded call's token that WeChat refused and returns
// the one to use now, noting it as handed out to the caller.
func (f *Facade) renew(ctx context.Context, c relay.Call) (string, error) {
	it := c.Data.(issuedToken)
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	snap, _, err := f.tokens.Report(ctx, c.ID, c.Token)
	if err != nil {
		return "", err
	}
	f.handedOut(snap, it.family, it.sdk)
	return snap.Token, nil
}

// forwardCall answers a path that is not a token endpoint.
func (f *Facade) forwardCall(w http.ResponseWriter, r *http.Request) {
	c, e := f.prepare(r)
	if e != nil {
		writeJSON(w, e)
		return
	}
	f.relay.Forward(w, r, c)
}

// prepare checks that r may be forwarded and says where.
func (f *Facade) prepare(r *http.Request) (relay.Call, *Error) {
	if f.upstream == nil || strings.Contains(r.URL.Path, "//") || strings.Contains(r.URL.Path, "/../") {
		return relay.Call{}, &Error{Code: CodeInvalidURL, Msg: "invalid url domain or path: wxtoken's facade does not forward this path"}
	}
	q := r.URL.Query()
	c := relay.Call{Param: "access_token"}
	if q.Get(c.Param) == "" {
		c.Param = "component_access_token"
	}
	tok := q.Get(c.Param)
	if tok == "" {
		return relay.Call{}, &Error{Code: CodeTokenMissing, Msg: "access_token missing: wxtoken's facade forwards only calls made with a token it issued"}
	}
	it, e := f.holderOfAny(r, tok)
	if e != nil {
		return relay.Call{}, e
	}
	base, err := url.Parse(f.upstream(it.family))
	if err != nil || base.Host == "" {
		return relay.Call{}, &Error{Code: CodeSystemError, Msg: "system error: no upstream for this token"}
	}
	c.ID, c.Token, c.Base, c.Data = it.id, tok, base, it
	return c, nil
}

// holderOfAny is holder for a token of any family.
func (f *Facade) holderOfAny(r *http.Request, tok string) (issuedToken, *Error) {
	it, ok := f.issued.lookup(r.Context(), tok)
	if !ok {
		return issuedToken{}, &Error{Code: CodeInvalidCred, Msg: "invalid credential, access_token is invalid or not latest: not a token wxtoken issued"}
	}
	return f.holder(r, tok, it.family)
}
