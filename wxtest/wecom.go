package wxtest

import (
	"net/http"
	"net/url"
	"time"
)

// serveWeCom answers GET /cgi-bin/gettoken on the WeCom host. Older docs
// promised the same token for repeated calls within its validity; the
// current ones do not, so the fake takes the stricter reading and issues a
// new token on every call, keeping the old one valid for Config.Overlap. A
// token server that works against this works against either behaviour.
//
// A custom-developed app's (代开发) token comes from here too, with the
// authorizing corp's corpid and the permanent code as corpsecret
// (WECHAT.md §7). Such a call counts in Stats of "suiteid/corpid", and meets
// the fault of that id, else of the suite id.
func (f *Fake) serveWeCom(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids := f.weComIDs(q.Get("corpid"), q.Get("corpsecret"))
	f.count(ids[0], func(s *Stats) { s.WeComCalls++ })
	if f.applyFault(w, r, ids...) {
		return
	}
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	reply := f.weCom(r, q)
	if f.takeLoss(ids[0]) {
		<-r.Context().Done()
		return
	}
	writeJSON(w, reply)
}

// weCom checks the corp, the day's quota (kept per corpid, shared by the
// corp's applications), the caller's IP and the application secret, in that
// order, with WeCom's own codes: 40013, 45009, 60020 and 40001.
func (f *Fake) weCom(r *http.Request, q url.Values) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	corpid, secret := q.Get("corpid"), q.Get("corpsecret")
	if auth := f.customAuth(corpid, secret); auth != nil {
		return f.customToken(r, auth, secret, now)
	}
	a := f.corp(corpid)
	if a == nil {
		if f.authCorps[corpid] {
			// A corp known from a suite's authorization exists, so a
			// secret that is none of its permanent codes is a bad secret.
			return failf(codeInvalidCredential, "invalid credential, corpsecret is invalid")
		}
		return failf(codeInvalidAppID, "invalid corpid")
	}
	if !a.quota.take(now, f.cfg.dailyLimit()) {
		return failf(codeDailyQuota, "api freq out of limit")
	}
	if e, good := f.checkIP(r, true); !good {
		return e
	}
	prev, known := a.corp[secret]
	if !known {
		return failf(codeInvalidCredential, "invalid credential, corpsecret is invalid")
	}
	if f.cfg.WeComRepeat && prev != nil && prev.check(now) == 0 && prev.expiresIn(now) > 0 {
		return weComTokenReply{ErrMsg: "ok", AccessToken: prev.value, ExpiresIn: prev.expiresIn(now)}
	}
	t, err := f.issue(a, now)
	if err != nil {
		return failf(codeSystemBusy, "system busy")
	}
	t.wecom, t.app = true, secret
	prev.replace(now, f.cfg.overlap())
	a.corp[secret] = t
	return weComTokenReply{ErrMsg: "ok", AccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}

// weComIDs returns the ids a gettoken call is counted and faulted under:
// the corpid, or for a custom app's permanent code (current or not) the
// authorization's "suiteid/corpid" and then the suite id.
func (f *Fake) weComIDs(corpid, secret string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if auth := f.customAuth(corpid, secret); auth != nil {
		return []string{auth.account.id, auth.suite.id}
	}
	return []string{corpid}
}

// customToken answers gettoken for a custom app's permanent code: the
// checks of an ordinary application, against the authorization's own
// daily quota, then 40001 (WeCom's wrong-secret answer) for a permanent
// code that was replaced or whose authorization was cancelled. The caller
// holds f.mu.
func (f *Fake) customToken(r *http.Request, auth *suiteAuth, secret string, now time.Time) any {
	a := auth.account
	if !a.quota.take(now, f.cfg.dailyLimit()) {
		return failf(codeDailyQuota, "api freq out of limit")
	}
	if e, good := f.checkIP(r, true); !good {
		return e
	}
	if secret != auth.permanent {
		return failf(codeInvalidCredential, "invalid credential, corpsecret is invalid")
	}
	if prev := auth.token; f.cfg.WeComRepeat && prev != nil && prev.check(now) == 0 && prev.expiresIn(now) > 0 {
		return weComTokenReply{ErrMsg: "ok", AccessToken: prev.value, ExpiresIn: prev.expiresIn(now)}
	}
	t, err := f.corpToken(auth, now)
	if err != nil {
		return failf(codeSystemBusy, "system busy")
	}
	return weComTokenReply{ErrMsg: "ok", AccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}
