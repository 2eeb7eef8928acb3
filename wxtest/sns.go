package wxtest

import (
	"net/http"
	"time"
)

// A user's identity reaches a business server as a one-time code: a Mini
// Program's wx.login() gives one, and so does a web page's OAuth redirect
// (snsapi_base / snsapi_userinfo). The server exchanges it, with the
// AppSecret rather than an access token, at sns/jscode2session (Mini
// Program: the openid and session_key) or sns/oauth2/access_token (web: a
// user access token, 7200 s, with a refresh token, and the openid). A code
// works once, for 5 minutes.

// Codes of the login endpoints.
const (
	codeMissingCode = 41008 // missing code
	codeInvalidCode = 40029 // invalid code
	codeCodeUsed    = 40163 // code been used
)

// loginCodeLifetime is how long WeChat honours a login code.
const loginCodeLifetime = 5 * time.Minute

// loginCode is one code LoginCode issued.
type loginCode struct {
	appid, openid string
	expires       time.Time
	used          bool
}

// LoginCode plays a user logging in to appid (wx.login() in a Mini
// Program, or an OAuth redirect on a web page) and returns the code the
// business server receives, which names the user openid.
func (f *Fake) LoginCode(appid, openid string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	code, err := f.randomString(16)
	if err != nil {
		return "", err
	}
	if f.loginCodes == nil {
		f.loginCodes = map[string]*loginCode{}
	}
	f.loginCodes[code] = &loginCode{appid: appid, openid: openid, expires: f.cfg.now().Add(loginCodeLifetime)}
	return code, nil
}

// jscode2sessionReply is sns/jscode2session's answer.
type jscode2sessionReply struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

// oauthReply is sns/oauth2/access_token's answer.
type oauthReply struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	OpenID       string `json:"openid"`
	Scope        string `json:"scope"`
}

// serveLogin answers GET sns/jscode2session (the code in js_code) and
// sns/oauth2/access_token (in code); both take grant_type
// authorization_code, the appid and its AppSecret.
func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	q := r.URL.Query()
	appid := q.Get("appid")
	f.count(appid, func(s *Stats) { s.LoginCalls++ })
	codeParam := "code"
	if r.URL.Path == "/sns/jscode2session" {
		codeParam = "js_code"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	a := f.app(appid)
	switch {
	case q.Get("grant_type") != "authorization_code":
		writeJSON(w, fail(codeInvalidGrantType))
		return
	case a == nil:
		writeJSON(w, fail(codeInvalidAppID))
		return
	}
	if e, good := checkAppSecret(a, q.Get("secret")); !good {
		writeJSON(w, e)
		return
	}
	code := q.Get(codeParam)
	c := f.loginCodes[code]
	switch {
	case code == "":
		writeJSON(w, fail(codeMissingCode))
		return
	case c == nil || c.appid != appid || !now.Before(c.expires):
		writeJSON(w, fail(codeInvalidCode))
		return
	case c.used:
		writeJSON(w, fail(codeCodeUsed))
		return
	}
	c.used = true
	secret, err := f.randomString(16)
	if err != nil {
		writeJSON(w, fail(codeSystemBusy))
		return
	}
	if codeParam == "js_code" {
		writeJSON(w, jscode2sessionReply{OpenID: c.openid, SessionKey: secret})
		return
	}
	refresh, _ := f.randomString(16)
	writeJSON(w, oauthReply{AccessToken: secret, ExpiresIn: 7200, RefreshToken: refresh, OpenID: c.openid, Scope: "snsapi_base"})
}
