package wxtest

import (
	"net/http"
	"net/url"
)

// grantType is the only grant the token endpoints accept.
const grantType = "client_credential"

// serveClassic answers GET /cgi-bin/token. Every successful call issues a
// new token and starts the overlap of the one it replaces: this is the
// behaviour that makes two fetching processes knock each other out, and the
// reason a central token server exists.
func (f *Fake) serveClassic(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appid := q.Get("appid")
	f.count(appid, func(s *Stats) { s.ClassicCalls++ })
	if f.applyFault(w, r, appid) {
		return
	}
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	reply := f.classic(r, q)
	if f.takeLoss(appid) {
		<-r.Context().Done()
		return
	}
	writeJSON(w, reply)
}

// classic makes the checks in the order the outcome is least surprising:
// the request's shape, the account (61024 for a component appid, as
// WECHAT.md says), the day's quota (which every call to a known app uses up,
// whatever follows), the caller's IP, then the secret.
func (f *Fake) classic(r *http.Request, q url.Values) any {
	if q.Get("grant_type") != grantType {
		return fail(codeInvalidGrantType)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	if f.component(q.Get("appid")) != nil {
		// A third-party platform gets its token from api_component_token.
		return fail(codeComponentAppID)
	}
	a := f.app(q.Get("appid"))
	if a == nil {
		return fail(codeInvalidAppID)
	}
	if !a.quota.take(now, f.cfg.dailyLimit()) {
		return fail(codeDailyQuota)
	}
	if e, good := f.checkIP(r, false); !good {
		return e
	}
	if e, good := checkAppSecret(a, q.Get("secret")); !good {
		return e
	}
	t, err := f.issue(a, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	a.classic.replace(now, f.cfg.overlap())
	a.classic = t
	return tokenReply{AccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}
