package wxtest

import (
	"net/http"
	"net/url"
)

// serveWeCom answers GET /cgi-bin/gettoken on the WeCom host. Older docs
// promised the same token for repeated calls within its validity; the
// current ones do not, so the fake takes the stricter reading and issues a
// new token on every call, keeping the old one valid for Config.Overlap. A
// token server that works against this works against either behaviour.
func (f *Fake) serveWeCom(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	corpid := q.Get("corpid")
	f.count(corpid, func(s *Stats) { s.WeComCalls++ })
	if f.applyFault(w, r, corpid) {
		return
	}
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	reply := f.weCom(r, q)
	if f.takeLoss(corpid) {
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
	a := f.corp(q.Get("corpid"))
	if a == nil {
		return failf(codeInvalidAppID, "invalid corpid")
	}
	if !a.quota.take(now, f.cfg.dailyLimit()) {
		return failf(codeDailyQuota, "api freq out of limit")
	}
	if e, good := f.checkIP(r, true); !good {
		return e
	}
	secret := q.Get("corpsecret")
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
