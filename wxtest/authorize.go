package wxtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/callback"
)

// Authorize plays an account owner authorizing a component on the
// platform's authorization page, and pushes the `authorized` event
// (AuthorizerAppid, AuthorizationCode, AuthorizationCodeExpiredTime,
// PreAuthCode) to the component's target. It returns the authorization
// code, which api_query_auth exchanges once within an hour.
//
// The authorization starts afresh every time: a new authorizer_refresh_token
// replaces any earlier one at once (the docs say re-authorizing invalidates
// the old refresh token), and the rotation count restarts. Access tokens
// issued earlier are left to run out. The authorizer appid becomes an
// account of the fake, so Stats reports on it. The pre-auth code is the
// newest unused one from api_create_preauthcode, or a new one.
//
// The authorization is made even when the push fails; the code is returned
// with the error then (ErrNoPushTarget, a transport error or a *PushError),
// so a test that imports authorizers without a push target can go on.
func (f *Fake) Authorize(ctx context.Context, componentAppID, authorizerAppID string) (authCode string, err error) {
	return f.authorize(ctx, componentAppID, authorizerAppID, callback.InfoAuthorized)
}

// UpdateAuthorization plays an account owner changing the permissions of an
// existing authorization, and pushes the `updateauthorized` event, with the
// same fields as Authorize's. The refresh token is kept. It fails, pushing
// nothing, when the authorizer has not authorized the component; otherwise
// the code is returned, also with a push error, as by Authorize.
func (f *Fake) UpdateAuthorization(ctx context.Context, componentAppID, authorizerAppID string) (authCode string, err error) {
	return f.authorize(ctx, componentAppID, authorizerAppID, callback.InfoUpdateAuthorized)
}

// authorize makes an authorized or updateauthorized change and pushes it.
func (f *Fake) authorize(ctx context.Context, componentAppID, authorizerAppID, infoType string) (string, error) {
	if authorizerAppID == "" {
		return "", errors.New("wxtest: empty authorizer appid")
	}
	f.mu.Lock()
	a := f.component(componentAppID)
	if a == nil {
		f.mu.Unlock()
		return "", notComponent(componentAppID)
	}
	now := f.cfg.now()
	msg, err := f.authorizeLocked(a, authorizerAppID, infoType, now)
	if err != nil {
		f.mu.Unlock()
		return "", err
	}
	p, err := f.seal(ctx, a, msg, now)
	f.mu.Unlock()
	return msg.AuthorizationCode.Text, f.deliver(a.id, p, err)
}

// authorizeLocked changes the grant and returns the event to push. It mints
// everything it needs before changing anything, so a failure changes
// nothing. The caller holds f.mu.
func (f *Fake) authorizeLocked(a *account, authorizerAppID, infoType string, now time.Time) (pushMessage, error) {
	cs := a.component
	g := cs.grants[authorizerAppID]
	var refresh string
	if infoType == callback.InfoAuthorized {
		var err error
		if refresh, err = f.newRefreshToken(); err != nil {
			return pushMessage{}, err
		}
	} else if g == nil || g.revoked {
		return pushMessage{}, notAuthorized(a.id, authorizerAppID)
	}
	code, err := f.randomString(codeRandBytes)
	if err != nil {
		return pushMessage{}, err
	}
	code = "queryauthcode@@@" + code
	pre, err := f.takePreAuthCode(cs, now)
	if err != nil {
		return pushMessage{}, err
	}
	if refresh != "" {
		if g == nil {
			g = &grant{authorizer: f.account(authorizerAppID)}
			cs.grants[authorizerAppID] = g
		}
		g.refresh, g.prevRefresh, g.revoked, g.refreshes = refresh, "", false, 0
	}
	cs.dropExpiredCodes(now)
	expires := now.Add(authCodeLifetime)
	cs.codes[code] = authCode{authorizer: authorizerAppID, expires: expires}
	return pushMessage{
		AppID:                        cdataText{a.id},
		CreateTime:                   now.Unix(),
		InfoType:                     cdataText{infoType},
		AuthorizerAppID:              optionalText(authorizerAppID),
		AuthorizationCode:            optionalText(code),
		AuthorizationCodeExpiredTime: expires.Unix(),
		PreAuthCode:                  optionalText(pre),
	}, nil
}

// Grant records that authorizerAppID has authorized the component, as
// Authorize does, but pushes nothing and issues no authorization code: it
// is an authorization made long ago, which a platform carries over from
// another system by importing its refresh token, returned here. Like
// Authorize, it starts the authorization afresh.
func (f *Fake) Grant(componentAppID, authorizerAppID string) (refresh string, err error) {
	if authorizerAppID == "" {
		return "", errors.New("wxtest: empty authorizer appid")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.component(componentAppID)
	if a == nil {
		return "", notComponent(componentAppID)
	}
	if refresh, err = f.newRefreshToken(); err != nil {
		return "", err
	}
	g := a.component.grants[authorizerAppID]
	if g == nil {
		g = &grant{authorizer: f.account(authorizerAppID)}
		a.component.grants[authorizerAppID] = g
	}
	g.refresh, g.prevRefresh, g.revoked, g.refreshes = refresh, "", false, 0
	return refresh, nil
}

// Unauthorize plays an account owner withdrawing an authorization, and
// pushes the `unauthorized` event (AuthorizerAppid) to the component's
// target. From then on api_authorizer_token answers 61023 for every refresh
// token of the authorization, the authorizer access tokens it issued answer
// 40001 at once (the overlap a replaced token gets does not apply), and its
// unexchanged authorization codes answer 61009. Authorize starts a new one.
//
// It fails, pushing nothing, when the authorizer has not authorized the
// component. The withdrawal is made even when the push fails, which err
// then reports.
func (f *Fake) Unauthorize(ctx context.Context, componentAppID, authorizerAppID string) error {
	f.mu.Lock()
	a := f.component(componentAppID)
	if a == nil {
		f.mu.Unlock()
		return notComponent(componentAppID)
	}
	cs := a.component
	g := cs.grants[authorizerAppID]
	if g == nil || g.revoked {
		f.mu.Unlock()
		return notAuthorized(componentAppID, authorizerAppID)
	}
	now := f.cfg.now()
	g.revoked = true
	g.refresh, g.prevRefresh = "", ""
	for _, t := range g.tokens {
		revoke(t, now)
	}
	g.token = nil
	for code, c := range cs.codes {
		if c.authorizer == authorizerAppID {
			delete(cs.codes, code)
		}
	}
	p, err := f.seal(ctx, a, pushMessage{
		AppID:           cdataText{a.id},
		CreateTime:      now.Unix(),
		InfoType:        cdataText{callback.InfoUnauthorized},
		AuthorizerAppID: optionalText(authorizerAppID),
	}, now)
	f.mu.Unlock()
	return f.deliver(a.id, p, err)
}

// notAuthorized is the error of a change to an authorization that does not
// exist.
func notAuthorized(componentAppID, authorizerAppID string) error {
	return fmt.Errorf("wxtest: %q has not authorized component %q", authorizerAppID, componentAppID)
}

// dropExpiredCodes forgets authorization codes that expired long enough ago
// that nobody will try them; until then they answer 61010. The caller holds
// f.mu.
func (cs *componentState) dropExpiredCodes(now time.Time) {
	for code, c := range cs.codes {
		if now.Sub(c.expires) > forget {
			delete(cs.codes, code)
		}
	}
}
