package facade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Error is an answer in WeChat's error shape, the only kind of error the
// facade gives: SDKs parse errcode, and nothing else.
type Error struct {
	Code int    `json:"errcode"`
	Msg  string `json:"errmsg"`
}

func (e *Error) Error() string { return fmt.Sprintf("errcode %d: %s", e.Code, e.Msg) }

// WeChat's errcodes the facade answers with (WECHAT.md §2, §3, §4).
const (
	CodeSystemError     = wechat.CodeSystemBusy        // no valid token now, or WeChat unreachable: the SDK retries
	CodeInvalidSecret   = wechat.CodeInvalidSecret     // wrong key (where the AppSecret goes)
	CodeInvalidCred     = wechat.CodeInvalidCredential // WeCom's answer to a wrong corpsecret; a token not issued here
	CodeInvalidAppID    = wechat.CodeInvalidAppID      // unknown appid/corpid, or one the key may not use
	CodeInvalidGrant    = wechat.CodeInvalidGrantType  // grant_type is not client_credential
	CodeInvalidToken    = wechat.CodeInvalidToken      // a token of another kind of account
	CodeTokenMissing    = wechat.CodeTokenMissing
	CodeAppIDMissing    = 41002
	CodeSecretMissing   = 41004
	CodeTokenExpired    = wechat.CodeTokenExpired
	CodeRequireGET      = 43001
	CodeRequirePOST     = wechat.CodeRequirePOST
	CodeMinuteQuota     = wechat.CodeMinuteQuota // a force_refresh within the refresh limits
	CodeDataFormat      = 47001                  // malformed or oversized JSON body
	CodeUnauthorizedAPI = 48001                  // a ticket type not enabled for the credential
	CodeNotAuthorized   = 61003                  // an authorizer not (or no longer) authorizing the platform
	CodeInvalidURL      = 40066                  // a path the facade does not forward
)

// tokenError is the WeChat-shaped answer to the manager's error for a
// credential the request is allowed to use.
func tokenError(err error) *Error {
	var un *token.UnavailableError
	var lim *token.LimitedError
	switch {
	case errors.Is(err, token.ErrRevoked):
		return &Error{Code: CodeNotAuthorized, Msg: "component is not authorized by this account: the authorization was withdrawn"}
	case errors.Is(err, token.ErrUnknown):
		return &Error{Code: CodeInvalidAppID, Msg: "invalid appid"}
	case errors.As(err, &lim):
		return &Error{Code: CodeMinuteQuota, Msg: "api minute-quota reach limit: " + lim.Error()}
	case errors.As(err, &un):
		msg := "system error: wxtoken has no valid token for this credential yet"
		if un.Cause != nil {
			msg = "system error: wxtoken has no valid token for this credential: " + un.Cause.Message
		}
		return &Error{Code: CodeSystemError, Msg: msg}
	}
	msg := "system error: " + err.Error()
	if code := wechat.ErrCode(err); code != 0 {
		msg = fmt.Sprintf("system error: wxtoken's refresh failed at WeChat (errcode %d)", code)
	}
	return &Error{Code: CodeSystemError, Msg: msg}
}

// writeJSON writes v as WeChat does: HTTP 200, JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decodeJSON reads a POST body of at most max bytes into v: one JSON
// object and nothing after it.
func decodeJSON(r *http.Request, max int64, v any) *Error {
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	switch {
	case err != nil:
		return &Error{Code: CodeDataFormat, Msg: "data format error: body not read: " + err.Error()}
	case int64(len(body)) > max:
		return &Error{Code: CodeDataFormat, Msg: fmt.Sprintf("data format error: body over %d bytes", max)}
	case len(strings.TrimSpace(string(body))) == 0 || strings.TrimSpace(string(body))[0] != '{':
		return &Error{Code: CodeDataFormat, Msg: "data format error: want a JSON object"}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		return &Error{Code: CodeDataFormat, Msg: "data format error: " + err.Error()}
	}
	if dec.More() {
		return &Error{Code: CodeDataFormat, Msg: "data format error: data after the JSON object"}
	}
	return nil
}

// method checks a request's method, as WeChat does (43001, 43002).
func method(r *http.Request, want string) *Error {
	if r.Method == want || (want == http.MethodGet && r.Method == http.MethodHead) {
		return nil
	}
	if want == http.MethodGet {
		return &Error{Code: CodeRequireGET, Msg: "require GET method"}
	}
	return &Error{Code: CodeRequirePOST, Msg: "require POST method"}
}
