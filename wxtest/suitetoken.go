package wxtest

import (
	"net/http"
	"time"
)

// WeCom's suite endpoints (WECHAT.md §7), on the WeCom host. They answer
// an errcode only when they fail: a success carries none.

// suiteTokenRequest is the body of POST get_suite_token.
type suiteTokenRequest struct {
	SuiteID string `json:"suite_id"`
	Secret  string `json:"suite_secret"`
	Ticket  string `json:"suite_ticket"`
}

// suiteTokenReply is get_suite_token's success answer.
type suiteTokenReply struct {
	SuiteAccessToken string `json:"suite_access_token"`
	ExpiresIn        int    `json:"expires_in"`
}

// permanentCodeRequest is the body of POST get_permanent_code.
type permanentCodeRequest struct {
	AuthCode string `json:"auth_code"`
}

// permanentCodeReply is get_permanent_code's success answer, v1 (with a
// corp token) or v2 (without).
type permanentCodeReply struct {
	AccessToken     string       `json:"access_token,omitempty"`
	ExpiresIn       int          `json:"expires_in,omitempty"`
	PermanentCode   string       `json:"permanent_code"`
	AuthCorpInfo    authCorpInfo `json:"auth_corp_info"`
	AuthInfo        authInfo     `json:"auth_info"`
	IsCustomizedApp bool         `json:"is_customized_app"`
}

// authCorpInfo is the auth_corp_info object of get_permanent_code.
type authCorpInfo struct {
	CorpID   string `json:"corpid"`
	CorpName string `json:"corp_name"`
}

// authInfo is the auth_info object of get_permanent_code: the applications
// the corp installed, one per suite authorization.
type authInfo struct {
	Agent []authAgent `json:"agent"`
}

// authAgent is one application in auth_info.agent.
type authAgent struct {
	AgentID int64  `json:"agentid"`
	Name    string `json:"name"`
}

// corpTokenRequest is the body of POST get_corp_token.
type corpTokenRequest struct {
	CorpID        string `json:"auth_corpid"`
	PermanentCode string `json:"permanent_code"`
}

// providerTokenRequest is the body of POST get_provider_token.
type providerTokenRequest struct {
	CorpID string `json:"corpid"`
	Secret string `json:"provider_secret"`
}

// providerTokenReply is get_provider_token's success answer.
type providerTokenReply struct {
	ProviderAccessToken string `json:"provider_access_token"`
	ExpiresIn           int    `json:"expires_in"`
}

// serveSuiteToken answers POST /cgi-bin/service/get_suite_token. Like the
// classic endpoint, every successful call issues a new token and the one
// it replaces stays valid for Config.Overlap. Faults set for the suite id
// apply here.
func (f *Fake) serveSuiteToken(w http.ResponseWriter, r *http.Request) {
	serveNamed(f, w, r, func(req suiteTokenRequest) string { return req.SuiteID },
		func(s *Stats, _ suiteTokenRequest) { s.SuiteTokenCalls++ }, f.suiteToken)
}

// suiteToken checks, in order: the suite (40083), the day's quota (45009;
// every call to a known suite uses it), the caller's IP (60020), the
// secret (40080) and the ticket (40085).
func (f *Fake) suiteToken(r *http.Request, req suiteTokenRequest) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a := f.suite(req.SuiteID)
	if a == nil {
		return fail(codeBadSuiteID)
	}
	if !a.quota.take(now, f.cfg.dailyLimit()) {
		return failf(codeDailyQuota, "api freq out of limit")
	}
	if e, good := f.checkIP(r, true); !good {
		return e
	}
	if req.Secret != a.suite.cfg.Secret {
		return fail(codeBadSuiteSecret)
	}
	if !a.suite.ticketOK(req.Ticket, now) {
		return fail(codeBadSuiteTicket)
	}
	t, err := f.issue(a, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	t.wecom, t.kind = true, kindSuite
	a.suite.token.replace(now, f.cfg.overlap())
	a.suite.token = t
	return suiteTokenReply{SuiteAccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}

// suiteCall makes the checks every endpoint called with a suite token
// shares, in this order: the token (41001 missing; 40082 unknown, not a
// suite's, or replaced longer than Config.Overlap ago; 42009 past its
// lifetime or ended by Expire), the body (47001) and the caller's IP
// (60020). It returns the suite. The caller holds f.mu.
func (f *Fake) suiteCall(r *http.Request, bodyErr error, now time.Time) (*account, apiError, bool) {
	value := r.URL.Query().Get("suite_access_token")
	if value == "" {
		return nil, fail(codeTokenMissing), false
	}
	t := f.tokens[value]
	if t == nil || t.kind != kindSuite {
		return nil, fail(codeBadSuiteToken), false
	}
	switch t.check(now) {
	case 0:
	case codeTokenExpired:
		t.owner.stats.DeadUses++
		return nil, fail(codeSuiteTokenExpired), false
	default:
		t.owner.stats.DeadUses++
		return nil, fail(codeBadSuiteToken), false
	}
	t.owner.stats.GoodUses++
	if bodyErr != nil {
		return nil, fail(codeDataFormat), false
	}
	if e, good := f.checkIP(r, true); !good {
		return nil, e, false
	}
	return t.owner, apiError{}, true
}

// callerSuite returns the suite id of the request's suite_access_token,
// valid or not, or "" when it is not a suite token the fake knows; calls
// are counted and faulted by it before the token is checked.
func (f *Fake) callerSuite(r *http.Request) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tokens[r.URL.Query().Get("suite_access_token")]; t != nil && t.kind == kindSuite {
		return t.owner.id
	}
	return ""
}

// servePermanentCode answers POST /cgi-bin/service/v2/get_permanent_code
// and, with v1, the older /cgi-bin/service/get_permanent_code, which also
// answers a corp token.
func (f *Fake) servePermanentCode(w http.ResponseWriter, r *http.Request, v1 bool) {
	req, bodyErr := decodeBody[permanentCodeRequest](r)
	f.count(f.callerSuite(r), func(s *Stats) { s.PermanentCodeCalls++ })
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	writeJSON(w, f.permanentCode(r, req, bodyErr, v1))
}

// permanentCode exchanges an auth code, once and within 10 minutes, for a
// new permanent code of the corp's authorization; 40078 answers a code the
// suite never issued, one spent, expired, or withdrawn by CancelAuth.
func (f *Fake) permanentCode(r *http.Request, req permanentCodeRequest, bodyErr error, v1 bool) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a, e, valid := f.suiteCall(r, bodyErr, now)
	if !valid {
		return e
	}
	s := a.suite
	code, known := s.codes[req.AuthCode]
	if !known || code.expired(now) {
		return fail(codeBadAuthCode)
	}
	auth := f.suiteAuthorization(a, code.corp)
	if err := f.newPermanentCode(auth); err != nil {
		return fail(codeSystemBusy)
	}
	delete(s.codes, req.AuthCode)
	reply := permanentCodeReply{
		PermanentCode:   auth.permanent,
		AuthCorpInfo:    authCorpInfo{CorpID: auth.corp, CorpName: "企业 " + auth.corp},
		AuthInfo:        authInfo{Agent: []authAgent{{AgentID: auth.agentID, Name: s.cfg.SuiteID}}},
		IsCustomizedApp: s.custom(),
	}
	if v1 {
		t, err := f.corpToken(auth, now)
		if err != nil {
			return fail(codeSystemBusy)
		}
		reply.AccessToken, reply.ExpiresIn = t.value, t.expiresIn(now)
	}
	return reply
}

// serveCorpToken answers POST /cgi-bin/service/get_corp_token: a new corp
// token per call, the one it replaces valid for Config.Overlap. The call
// is counted in Stats of "suiteid/corpid" and meets the fault of that id,
// else of the suite id, else the one for every account.
func (f *Fake) serveCorpToken(w http.ResponseWriter, r *http.Request) {
	req, bodyErr := decodeBody[corpTokenRequest](r)
	var ids []string
	if suiteID := f.callerSuite(r); suiteID != "" {
		ids = []string{suiteID + "/" + req.CorpID, suiteID}
		f.count(ids[0], func(s *Stats) { s.CorpTokenCalls++ })
	}
	if f.applyFault(w, r, ids...) {
		return
	}
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	writeJSON(w, f.corpTokenCall(r, req, bodyErr))
}

// corpTokenCall answers 48001 for a custom app template, whose tokens come
// from gettoken, and 40084 for a permanent code that is not the current
// one of the corp's working authorization of this suite.
func (f *Fake) corpTokenCall(r *http.Request, req corpTokenRequest, bodyErr error) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a, e, valid := f.suiteCall(r, bodyErr, now)
	if !valid {
		return e
	}
	if a.suite.custom() {
		return fail(codeAPIUnauthorized)
	}
	auth := a.suite.auths[req.CorpID]
	if !auth.active() || req.PermanentCode != auth.permanent {
		return fail(codeBadPermanentCode)
	}
	t, err := f.corpToken(auth, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	return tokenReply{AccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}

// serveProviderToken answers POST /cgi-bin/service/get_provider_token.
// Faults set for the provider's corpid apply here.
func (f *Fake) serveProviderToken(w http.ResponseWriter, r *http.Request) {
	serveNamed(f, w, r, func(req providerTokenRequest) string { return req.CorpID },
		func(s *Stats, _ providerTokenRequest) { s.ProviderTokenCalls++ }, f.providerToken)
}

// providerToken checks the provider (40013), the caller's IP (60020) and
// the secret (40001), then answers the current token while it is valid,
// with expires_in what it has left, as WeCom documents, and a new one once
// it has expired or Expire ended it.
func (f *Fake) providerToken(r *http.Request, req providerTokenRequest) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a := f.accounts[req.CorpID]
	if a == nil || a.provider == nil {
		return failf(codeInvalidAppID, "invalid corpid")
	}
	if e, good := f.checkIP(r, true); !good {
		return e
	}
	p := a.provider
	if req.Secret != p.secret {
		return failf(codeInvalidCredential, "invalid credential, provider_secret is invalid")
	}
	if cur := p.token; cur != nil && cur.check(now) == 0 && cur.expiresIn(now) > 0 {
		return providerTokenReply{ProviderAccessToken: cur.value, ExpiresIn: cur.expiresIn(now)}
	}
	t, err := f.issue(a, now)
	if err != nil {
		return fail(codeSystemBusy)
	}
	t.wecom, t.kind = true, kindProvider
	p.token = t
	return providerTokenReply{ProviderAccessToken: t.value, ExpiresIn: t.expiresIn(now)}
}
