package wxtest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes the fake answers with; WECHAT.md §2 gives their meanings.
const (
	codeSystemBusy        = -1
	codeInvalidCredential = 40001
	codeInvalidGrantType  = 40002
	codeInvalidAppID      = 40013
	codeInvalidToken      = 40014
	codeInvalidArgs       = 40097
	codeInvalidSecret     = 40125
	codeIPNotWhitelisted  = 40164
	codeSecretFrozen      = 40243
	codeTokenMissing      = 41001
	codeTokenExpired      = 42001
	codeRequireMethod     = 43002
	codeDailyQuota        = 45009
	codeMinuteQuota       = 45011
	codeDataFormat        = 47001
	codeClearQuotaLimit   = 48006
	codeWeComIPDenied     = 60020

	// Third-party platform codes; WECHAT.md §2 and §4.
	codeComponentIP        = 61004
	codeTicketExpired      = 61005
	codeTicketInvalid      = 61006
	codeAuthCodeInvalid    = 61009
	codeAuthCodeExpired    = 61010
	codeNeedComponentToken = 61014
	codeRefreshInvalid     = 61023
	codeComponentAppID     = 61024

	// WeCom suite codes; WECHAT.md §7.
	codeBadAuthCode       = 40078
	codeBadSuiteSecret    = 40080
	codeBadSuiteToken     = 40082
	codeBadSuiteID        = 40083
	codeBadPermanentCode  = 40084
	codeBadSuiteTicket    = 40085
	codeSuiteTokenExpired = 42009
	codeAPIUnauthorized   = 48001
)

// errmsgs holds the platform's wording for each code, so that a fault given
// only an errcode still reads like a real answer. Codes whose message
// carries a value (an IP, a method) are built where they are answered.
var errmsgs = map[int]string{
	codeSystemBusy:        "system error",
	codeInvalidCredential: "invalid credential, access_token is invalid or not latest",
	codeInvalidGrantType:  "invalid grant_type",
	codeInvalidAppID:      "invalid appid",
	codeInvalidToken:      "invalid access_token",
	codeInvalidArgs:       "invalid args",
	codeInvalidSecret:     "invalid appsecret",
	codeIPNotWhitelisted:  "invalid ip, not in whitelist",
	codeSecretFrozen:      "appsecret is frozen, please unfreeze it on the platform",
	codeTokenMissing:      "access_token missing",
	codeTokenExpired:      "access_token expired",
	codeRequireMethod:     "require POST method",
	codeDailyQuota:        "reach max api daily quota limit",
	codeMinuteQuota:       "api minute-quota reach limit",
	codeDataFormat:        "data format error",
	codeClearQuotaLimit:   "forbid to clear quota because of reaching the limit",
	codeWeComIPDenied:     "not allow to access from your ip",
	codeMissingCode:       "missing code",
	codeInvalidCode:       "invalid code",
	codeCodeUsed:          "code been used",
	codeAPIUnauthorized:   "api unauthorized",
	43003:                 "require https",
	61024:                 "third-party platform appid cannot call this api",
	89503:                 "this ip needs to be confirmed by the administrator",
	89506:                 "this ip is refused by the administrator, retry in 24 hours",
	89507:                 "this ip is refused by the administrator, retry in 1 hour",

	// The third-party platform's own wording; 61024 is above.
	codeComponentIP:        "access clientip is not registered",
	codeTicketExpired:      "component ticket is expired",
	codeTicketInvalid:      "component ticket is invalid",
	codeAuthCodeInvalid:    "code is invalid",
	codeAuthCodeExpired:    "code is expired",
	codeNeedComponentToken: "must use component token for component api",
	codeRefreshInvalid:     "refresh_token is invalid",

	// WeCom's wording for its suite codes.
	codeBadAuthCode:       "invalid auth_code",
	codeBadSuiteSecret:    "invalid suite_secret",
	codeBadSuiteToken:     "invalid suite_token",
	codeBadSuiteID:        "invalid suite_id",
	codeBadPermanentCode:  "invalid permanent_code",
	codeBadSuiteTicket:    "invalid suite_ticket",
	codeSuiteTokenExpired: "suite_token expired",
}

// apiError is the body of every WeChat error answer, sent with HTTP 200.
type apiError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// fail returns the answer for code with the platform's usual message.
func fail(code int) apiError {
	msg, ok := errmsgs[code]
	if !ok {
		msg = fmt.Sprintf("errcode %d", code)
	}
	return apiError{ErrCode: code, ErrMsg: msg}
}

// failf returns the answer for code with a message of its own.
func failf(code int, format string, args ...any) apiError {
	return apiError{ErrCode: code, ErrMsg: fmt.Sprintf(format, args...)}
}

// okReply is the answer of calls that return nothing but success.
var okReply = apiError{ErrCode: 0, ErrMsg: "ok"}

// tokenReply is the success answer of the OA token endpoints, which carry
// no errcode.
type tokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// weComTokenReply is gettoken's success answer, which does carry one.
type weComTokenReply struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// writeJSON is the one place answers are encoded. WeChat answers errors with
// HTTP 200 too, and labels its JSON this way.
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value passed here is a plain struct; this cannot happen.
		panic(fmt.Sprintf("wxtest: encoding answer: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
