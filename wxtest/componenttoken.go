package wxtest

import (
	"net/http"
	"time"
)

// startPushRequest is the body of POST api_start_push_ticket.
type startPushRequest struct {
	AppID  string `json:"component_appid"`
	Secret string `json:"component_secret"`
}

// componentTokenRequest is the body of POST api_component_token.
type componentTokenRequest struct {
	AppID  string `json:"component_appid"`
	Secret string `json:"component_appsecret"`
	Ticket string `json:"component_verify_ticket"`
}

// componentTokenReply is api_component_token's success answer.
type componentTokenReply struct {
	ComponentAccessToken string `json:"component_access_token"`
	ExpiresIn            int    `json:"expires_in"`
}

// preAuthCodeRequest is the body of POST api_create_preauthcode.
type preAuthCodeRequest struct {
	AppID string `json:"component_appid"`
}

// preAuthCodeReply is api_create_preauthcode's success answer.
type preAuthCodeReply struct {
	PreAuthCode string `json:"pre_auth_code"`
	ExpiresIn   int    `json:"expires_in"`
}

// serveStartPushTicket answers POST /cgi-bin/component/api_start_push_ticket,
// which a platform calls when it holds no valid ticket, for instance after a
// restart. The answer comes at once; the push follows shortly after, from a
// goroutine that Close stops.
func (f *Fake) serveStartPushTicket(w http.ResponseWriter, r *http.Request) {
	req, bodyErr := decodeBody[startPushRequest](r)
	f.count(req.AppID, func(s *Stats) { s.StartPushCalls++ })
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	if bodyErr != nil {
		writeJSON(w, fail(codeDataFormat))
		return
	}
	writeJSON(w, f.startPushTicket(r, req))
}

// startPushTicket checks the component (40013, the code the docs give), the
// caller's IP (61004) and the secret (40125, or 40243 when frozen), then
// schedules the push. A closed Fake answers -1: it no longer pushes.
func (f *Fake) startPushTicket(r *http.Request, req startPushRequest) apiError {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.component(req.AppID)
	if a == nil {
		return fail(codeInvalidAppID)
	}
	if e, good := f.checkComponentIP(r); !good {
		return e
	}
	if e, good := checkAppSecret(a, req.Secret); !good {
		return e
	}
	if !f.pushLater(a.id) {
		return fail(codeSystemBusy)
	}
	return okReply
}

// serveComponentToken answers POST /cgi-bin/component/api_component_token.
// Like the classic endpoint, every successful call issues a new token and
// the one it replaces stays valid for Config.Overlap. Faults set for the
// component appid apply here.
func (f *Fake) serveComponentToken(w http.ResponseWriter, r *http.Request) {
	serveNamed(f, w, r, func(req componentTokenRequest) string { return req.AppID },
		func(s *Stats, _ componentTokenRequest) { s.ComponentTokenCalls++ }, f.componentToken)
}

// componentToken checks, in order: the component (40013), the day's quota
// (45009; every call to a known component uses it, as at the classic
// endpoint), the caller's IP (61004), the secret (40125 or 40243), and the
// ticket (61006 never pushed, 61005 expired or superseded).
func (f *Fake) componentToken(r *http.Request, req componentTokenRequest) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a := f.component(req.AppID)
	if a == nil {
		return fail(codeInvalidAppID)
	}
	if !a.quota.take(now, f.cfg.dailyLimit()) {
		return fail(codeDailyQuota)
	}
	if e, good := f.checkComponentIP(r); !good {
		return e
	}
	if e, good := checkAppSecret(a, req.Secret); !good {
		return e
	}
	if code := a.component.checkTicket(req.Ticket, now); code != 0 {
		return fail(code)
	}
	t, err := f.issue(a, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	a.component.token.replace(now, f.cfg.overlap())
	a.component.token = t
	return componentTokenReply{ComponentAccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}

// servePreAuthCode answers POST
// /cgi-bin/component/api_create_preauthcode?component_access_token=.. with a
// new pre-auth code, valid for 1800 s as the docs say. The codes are kept
// for Authorize, which uses the newest unused one as the code the account
// owner's authorization page was opened with.
func (f *Fake) servePreAuthCode(w http.ResponseWriter, r *http.Request) {
	req, bodyErr := decodeBody[preAuthCodeRequest](r)
	f.count(req.AppID, func(s *Stats) { s.PreAuthCodeCalls++ })
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	writeJSON(w, f.preAuthCode(r, req, bodyErr))
}

func (f *Fake) preAuthCode(r *http.Request, req preAuthCodeRequest, bodyErr error) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a, e, valid := f.componentCall(r, req.AppID, bodyErr, now)
	if !valid {
		return e
	}
	code, err := f.newPreAuthCode(a.component, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	return preAuthCodeReply{PreAuthCode: code, ExpiresIn: int(preAuthCodeLifetime / time.Second)}
}

// newPreAuthCode mints a pre-auth code valid from now and keeps it for
// Authorize. The caller holds f.mu.
func (f *Fake) newPreAuthCode(cs *componentState, now time.Time) (string, error) {
	v, err := f.randomString(codeRandBytes)
	if err != nil {
		return "", err
	}
	v = "preauthcode@@@" + v
	cs.dropExpiredPreAuth(now)
	cs.preAuth = append(cs.preAuth, expiring{value: v, expires: now.Add(preAuthCodeLifetime)})
	return v, nil
}

// takePreAuthCode returns the pre-auth code an authorization at now used:
// the newest unused one from api_create_preauthcode, which is then spent,
// or a new one when there is none, as if the platform's page had asked for
// it. The caller holds f.mu.
func (f *Fake) takePreAuthCode(cs *componentState, now time.Time) (string, error) {
	cs.dropExpiredPreAuth(now)
	if n := len(cs.preAuth); n > 0 {
		v := cs.preAuth[n-1].value
		cs.preAuth[n-1] = expiring{}
		cs.preAuth = cs.preAuth[:n-1]
		return v, nil
	}
	v, err := f.newPreAuthCode(cs, now)
	if err != nil {
		return "", err
	}
	cs.preAuth = cs.preAuth[:len(cs.preAuth)-1]
	return v, nil
}

// dropExpiredPreAuth forgets the pre-auth codes that have expired at now.
// They are kept oldest first, so the expired ones lead.
func (cs *componentState) dropExpiredPreAuth(now time.Time) {
	i := 0
	for i < len(cs.preAuth) && !now.Before(cs.preAuth[i].expires) {
		i++
	}
	if i > 0 {
		clear(cs.preAuth[:i])
		cs.preAuth = cs.preAuth[i:]
	}
}
