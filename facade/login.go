package facade

import (
	"errors"
	"io"
	"net/http"
	"net/url"
)

// A user's login code is exchanged with the AppSecret, not a token:
// sns/jscode2session (a Mini Program's wx.login()) and
// sns/oauth2/access_token (a web page's OAuth redirect). An SDK sends the
// client key where it would send the AppSecret; the facade checks the key
// and the client's allow list, puts the AppSecret in its place and passes
// the call to WeChat, so that no business server ever holds an AppSecret.
// The answer (the user's openid, session key or user access token) goes
// back as WeChat gave it. The AppSecret never reaches a log or an answer.

// login answers GET sns/jscode2session and sns/oauth2/access_token.
func (f *Facade) login(w http.ResponseWriter, r *http.Request) {
	if e := method(r, http.MethodGet); e != nil {
		writeJSON(w, e)
		return
	}
	q := r.URL.Query()
	_, cr, e := f.resolve(MP, q.Get("appid"), q.Get("secret"), CodeInvalidSecret)
	if e != nil {
		writeJSON(w, e)
		return
	}
	if cr.Secret == "" || f.upstream == nil {
		writeJSON(w, &Error{Code: CodeInvalidAppID, Msg: "invalid appid: wxtoken holds no AppSecret for " + cr.ID})
		return
	}
	base, err := url.Parse(f.upstream(MP))
	if err != nil || base.Host == "" {
		writeJSON(w, &Error{Code: CodeSystemError, Msg: "system error: no upstream"})
		return
	}
	q.Set("secret", cr.Secret)
	u := base.JoinPath(r.URL.Path)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		writeJSON(w, &Error{Code: CodeSystemError, Msg: "system error"})
		return
	}
	resp, err := f.loginClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL holds the AppSecret
		}
		f.log.Warn("login call failed", "credential", cr.ID, "path", r.URL.Path, "err", err)
		writeJSON(w, &Error{Code: CodeSystemError, Msg: "system error: WeChat could not be reached"})
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, 64<<10))
}
