package wxtest

import (
	"fmt"
	"net/http"
	"time"
)

// The fixed lifetimes of the third-party platform's credentials, from the
// Open Platform docs. They do not follow Config.Lifetime, which is the life
// of access tokens only.
const (
	// ticketLifetime is how long a component_verify_ticket is accepted.
	ticketLifetime = 12 * time.Hour
	// preAuthCodeLifetime is the expires_in of api_create_preauthcode.
	preAuthCodeLifetime = 1800 * time.Second
	// authCodeLifetime separates CreateTime from AuthorizationCodeExpiredTime
	// in the platform's own authorized event sample.
	authCodeLifetime = 3600 * time.Second
)

// Sizes of the random part of the component credentials that are not access
// tokens. Refresh tokens are 43 base64 characters, like the docs' sample.
const (
	verifyTicketRandBytes = 48
	codeRandBytes         = 32
	refreshRandBytes      = 32
)

// Component is an Open Platform third-party platform (第三方平台): what the
// fake and the token server under test are both configured with.
type Component struct {
	// AppID is the component appid. It addresses every push, and is the
	// receive id sealed inside them.
	AppID string

	// Secret is the component_appsecret that api_component_token and
	// api_start_push_ticket check.
	Secret string

	// Token and EncodingAESKey are the message-verification token and the
	// 43-character key entered for the authorization-event URL; the fake
	// signs and encrypts its pushes with them.
	Token, EncodingAESKey string
}

// String names the component by its appid alone, so that printing one never
// shows its secret, token or key.
func (c Component) String() string {
	return fmt.Sprintf("wxtest.Component{AppID: %q}", c.AppID)
}

// GoString is String, so that %#v redacts the secrets as well.
func (c Component) GoString() string { return c.String() }

// componentState is what the fake keeps about a component account.
type componentState struct {
	cfg Component

	// token is the current component_access_token.
	token *token

	// ticket and prevTicket are the two newest component_verify_tickets,
	// the only ones api_component_token accepts; tickets remembers when
	// every recent ticket was pushed, so that an old one answers 61005
	// rather than 61006.
	ticket, prevTicket string
	tickets            map[string]time.Time

	preAuth []expiring          // unused pre-auth codes, oldest first
	codes   map[string]authCode // authorization codes not yet exchanged
	grants  map[string]*grant   // authorizations, by authorizer appid
}

// expiring is a code with the time it stops working.
type expiring struct {
	value   string
	expires time.Time
}

// authCode is an authorization code waiting for api_query_auth.
type authCode struct {
	authorizer string
	expires    time.Time
}

// grant is one authorizer's authorization of one component. The tokens it
// yields belong to the authorizer's account, so that Stats of the authorizer
// appid counts their uses.
type grant struct {
	authorizer *account

	// refresh is the current authorizer_refresh_token. prevRefresh is the
	// one it replaced, still accepted until refresh is first used; empty
	// when there is none.
	refresh, prevRefresh string

	// revoked is set by Unauthorize and cleared by Authorize.
	revoked bool

	token  *token   // the current authorizer_access_token
	tokens []*token // tokens issued under this grant, for Unauthorize

	// refreshes counts successful api_authorizer_token calls since the
	// grant began, to time refresh-token rotation.
	refreshes int
}

// accepts reports whether refresh is a refresh token of g that still works.
func (g *grant) accepts(refresh string) bool {
	if g == nil || g.revoked || refresh == "" {
		return false
	}
	return refresh == g.refresh || refresh == g.prevRefresh
}

// AddComponent registers a third-party platform. Adding an appid again
// replaces its secret, token and key and unfreezes its secret; tickets,
// tokens and authorizations are kept.
func (f *Fake) AddComponent(c Component) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.account(c.AppID)
	if a.component == nil {
		a.component = &componentState{
			tickets: make(map[string]time.Time),
			codes:   make(map[string]authCode),
			grants:  make(map[string]*grant),
		}
	}
	a.component.cfg = c
	// The account's secret is the component secret, so that FreezeSecret
	// and checkAppSecret work for components as for apps.
	a.secret = c.Secret
	a.frozen = false
}

// component returns the component registered as appid, or nil. The caller
// holds f.mu.
func (f *Fake) component(appid string) *account {
	if a := f.accounts[appid]; a != nil && a.component != nil {
		return a
	}
	return nil
}

// SetRefreshTokenRotation makes api_authorizer_token hand out a new
// authorizer_refresh_token on every Nth successful call for each of the
// component's authorizers (counted per authorization), and the current one
// otherwise; every <= 0 turns rotation off, which is the default.
//
// The rule when a refresh token rotates: the one it replaces keeps working
// until the new one is used once, then answers 61023. A token server that
// lost the answer carrying the new token can therefore retry with the old
// one (and get the new one again), but once it has used the new token the
// old one is gone for good. At most two refresh tokens of an authorization
// work at any time. The setting may be made before AddComponent.
func (f *Fake) SetRefreshTokenRotation(componentAppID string, every int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if every <= 0 {
		delete(f.rotation, componentAppID)
		return
	}
	f.rotation[componentAppID] = every
}

// AuthorizerRefreshToken returns the current authorizer_refresh_token of an
// authorization, for tests that import authorizers instead of going through
// api_query_auth. It is "" when the authorizer has not authorized the
// component or has withdrawn the authorization.
func (f *Fake) AuthorizerRefreshToken(componentAppID, authorizerAppID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.component(componentAppID)
	if a == nil {
		return ""
	}
	g := a.component.grants[authorizerAppID]
	if g == nil || g.revoked {
		return ""
	}
	return g.refresh
}

// newTicket issues a component_verify_ticket at now. It becomes the current
// ticket, and the current one the previous; the one before that stops being
// accepted. The caller holds f.mu.
func (f *Fake) newTicket(cs *componentState, now time.Time) (string, error) {
	v, err := f.randomString(verifyTicketRandBytes)
	if err != nil {
		return "", err
	}
	v = "ticket@@@" + v
	for old, at := range cs.tickets {
		if now.Sub(at) > ticketLifetime+forget {
			delete(cs.tickets, old)
		}
	}
	cs.tickets[v] = now
	cs.prevTicket, cs.ticket = cs.ticket, v
	return v, nil
}

// checkTicket returns 0 if api_component_token accepts ticket at now, else
// the errcode to answer: 61006 for a value the fake never pushed (or pushed
// so long ago that it forgot it), 61005 for one older than 12 hours or
// superseded by two newer pushes.
func (cs *componentState) checkTicket(ticket string, now time.Time) int {
	at, known := cs.tickets[ticket]
	switch {
	case !known:
		return codeTicketInvalid
	case now.Sub(at) >= ticketLifetime, ticket != cs.ticket && ticket != cs.prevTicket:
		return codeTicketExpired
	}
	return 0
}

// componentCall makes the checks every endpoint called with a component
// access token shares, in this order: the token (41001, 40014, 40001, 42001,
// or 61014 for a token that is not a component's), the body (47001), the
// token's component against the body's component_appid (40013), and the
// caller's IP (61004). It returns the component. The caller holds f.mu.
func (f *Fake) componentCall(r *http.Request, appid string, bodyErr error, now time.Time) (*account, apiError, bool) {
	q := r.URL.Query()
	value := q.Get("component_access_token")
	if value == "" {
		// The newer docs name the same parameter access_token.
		value = q.Get("access_token")
	}
	if t := f.tokens[value]; t != nil && t.owner.component == nil {
		return nil, fail(codeNeedComponentToken), false
	}
	owner, e, valid := f.useValue(value, now)
	switch {
	case !valid:
		return nil, e, false
	case bodyErr != nil:
		return nil, fail(codeDataFormat), false
	case owner.id != appid:
		return nil, fail(codeInvalidAppID), false
	}
	if e, good := f.checkComponentIP(r); !good {
		return nil, e, false
	}
	return owner, apiError{}, true
}

// checkComponentIP applies the whitelist to component endpoints, which
// answer 61004 where the others answer 40164. The caller holds f.mu.
func (f *Fake) checkComponentIP(r *http.Request) (apiError, bool) {
	if _, good := f.checkIP(r, false); good {
		return apiError{}, true
	}
	return failf(codeComponentIP, "access clientip is not registered, requestIP: %s", callerIP(r)), false
}
