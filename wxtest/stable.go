package wxtest

import (
	"net/http"
	"time"
)

// The platform's limits on forced stable_token refreshes.
const (
	forceDailyLimit  = 20
	forceMinInterval = 30 * time.Second
)

// forceLimit tracks an app's forced stable_token refreshes: how many were
// made this Beijing day, and when the last one was.
type forceLimit struct {
	day   int
	count int
	last  time.Time
}

// allow reports whether a forced refresh may be made at now, and if not the
// errcode to answer: 45009 past the day's 20, 45011 within 30 s of the last.
func (l *forceLimit) allow(now time.Time) int {
	if d := beijingDay(now); d != l.day {
		l.day, l.count = d, 0
	}
	switch {
	case l.count >= forceDailyLimit:
		return codeDailyQuota
	case !l.last.IsZero() && now.Sub(l.last) < forceMinInterval:
		return codeMinuteQuota
	}
	return 0
}

// record counts a forced refresh made at now.
func (l *forceLimit) record(now time.Time) {
	l.count++
	l.last = now
}

// stableRequest is the JSON body of POST /cgi-bin/stable_token.
type stableRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// serveStable answers POST /cgi-bin/stable_token. Its tokens are kept apart
// from classic ones: issuing one never touches the other family.
func (f *Fake) serveStable(w http.ResponseWriter, r *http.Request) {
	serveNamed(f, w, r, func(req stableRequest) string { return req.AppID },
		func(s *Stats, req stableRequest) {
			s.StableCalls++
			if req.ForceRefresh {
				s.StableForced++
			}
		}, f.stable)
}

// stable checks the caller like the classic endpoint does, except that no
// daily quota applies (the platform's 500,000 a day is out of a test's
// reach), then hands out the current token or a new one.
func (f *Fake) stable(r *http.Request, req stableRequest) any {
	if req.GrantType != grantType {
		return fail(codeInvalidGrantType)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	if f.component(req.AppID) != nil {
		// The docs name only the classic endpoint; the fake assumes the
		// stable one refuses a component appid the same way.
		return fail(codeComponentAppID)
	}
	a := f.app(req.AppID)
	if a == nil {
		return fail(codeInvalidAppID)
	}
	if e, good := f.checkIP(r, false); !good {
		return e
	}
	if e, good := checkAppSecret(a, req.Secret); !good {
		return e
	}
	if req.ForceRefresh {
		return f.forceStable(a, now)
	}
	if cur := a.stable; cur != nil && cur.check(now) == 0 && f.reusable(cur, now) {
		return tokenReply{AccessToken: cur.value, ExpiresIn: cur.expiresIn(now)}
	}
	// Near expiry the platform renews without invalidating: the old token
	// lives out its own lifetime, so a caller holding it is not cut off.
	t, err := f.issue(a, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	a.stable = t
	return tokenReply{AccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}

// reusable reports whether a normal call at now should get t again: more
// than StableRenewBefore (and at least a whole second, so expires_in is
// never 0) must remain.
func (f *Fake) reusable(t *token, now time.Time) bool {
	left := t.expires.Sub(now)
	return left > f.cfg.stableRenewBefore() && left >= time.Second
}

// forceStable issues a new stable token at once, within the force limits.
// The token it replaces keeps working for Config.Overlap, like a replaced
// classic token; the docs say only that it is invalidated.
func (f *Fake) forceStable(a *account, now time.Time) any {
	if code := a.forced.allow(now); code != 0 {
		return fail(code)
	}
	t, err := f.issue(a, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	a.forced.record(now)
	a.stable.replace(now, f.cfg.overlap())
	a.stable = t
	return tokenReply{AccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}
