package wechat

import (
	"errors"
	"fmt"
)

// Error codes a token server acts on. WECHAT.md §2 lists their meanings.
const (
	CodeSystemBusy        = -1
	CodeInvalidCredential = 40001
	CodeInvalidGrantType  = 40002
	CodeInvalidAppID      = 40013
	CodeInvalidToken      = 40014
	CodeInvalidSecret     = 40125
	CodeIPNotWhitelisted  = 40164
	CodeSecretFrozen      = 40243
	CodeTokenMissing      = 41001
	CodeTokenExpired      = 42001
	CodeRequirePOST       = 43002
	CodeRequireHTTPS      = 43003
	CodeDailyQuota        = 45009
	CodeMinuteQuota       = 45011
	CodeWeComIPDenied     = 60020
	CodeComponentIP       = 61004
	CodeTicketExpired     = 61005
	CodeTicketInvalid     = 61006
	CodeRefreshInvalid    = 61023
	CodeAdminConfirm      = 89503
	CodeIPRefused24h      = 89506
	CodeIPRefused1h       = 89507

	// WeCom third-party suites, WECHAT.md §7.
	CodeBadAuthCode       = 40078 // auth_code unknown, spent or past its 10 minutes
	CodeBadSuiteSecret    = 40080
	CodeBadSuiteToken     = 40082 // suite_access_token unknown or replaced
	CodeBadSuiteID        = 40083
	CodeBadPermanentCode  = 40084 // authorization withdrawn or code replaced
	CodeBadSuiteTicket    = 40085 // suite_ticket stale, unknown or another suite's
	CodeSuiteTokenExpired = 42009
)

// APIError is a failure WeChat reported in a response body, modelled on
// oauth2's RetrieveError: the errcode is the contract, the errmsg is for
// humans. It never carries the request that caused it.
type APIError struct {
	ErrCode int
	ErrMsg  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wechat: errcode %d: %s", e.ErrCode, e.ErrMsg)
}

// HTTPError is a response that was not a WeChat answer at all: a non-2xx
// status from the host or a gateway in front of it.
type HTTPError struct {
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("wechat: unexpected HTTP status %d", e.StatusCode)
}

// ErrBadResponse reports a 2xx body that is neither a token nor an error.
var ErrBadResponse = errors.New("wechat: malformed response")

// ErrNoTicket reports that a third-party platform holds no valid
// component_verify_ticket, or a WeCom suite no valid suite_ticket, to fetch
// its token with. It is classed Ticket, like WeChat's own 61005 and 61006
// and WeCom's 40085.
var ErrNoTicket = errors.New("wechat: no valid ticket pushed yet")

// Class is what a token server should do about a failed call.
type Class int

const (
	// Retry: transient (system busy, 5xx, network, timeout); back off and
	// try again while serving the token still held.
	Retry Class = iota
	// Config: the credential or deployment is wrong (bad appid or secret,
	// IP not whitelisted, frozen secret, plain http). Retrying in a loop
	// cannot help and may burn quota; alert and wait for an operator.
	Config
	// DailyQuota: the day's fetches are spent; stop until the quota resets.
	DailyQuota
	// MinuteQuota: too many calls this minute; back off about a minute.
	MinuteQuota
	// Stale: the token used was not the latest or has expired.
	Stale
	// Ticket: a third-party platform's verify ticket or a WeCom suite's
	// suite_ticket is missing or stale; wait for the next push.
	Ticket
	// Revoked: an authorizer's refresh token, or a WeCom corp's permanent
	// code, is no longer valid: the authorization was withdrawn.
	Revoked
)

var classNames = [...]string{"retry", "config", "daily_quota", "minute_quota", "stale", "ticket", "revoked"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Classify sorts err into a Class. Errors that are not WeChat's own, such as
// connection failures, bad HTTP statuses and timeouts, are Retry; so is any
// errcode we do not know, because a token server must not stop serving on a
// surprise. A cancelled caller context is Retry as well: the caller decides.
func Classify(err error) Class {
	var api *APIError
	if !errors.As(err, &api) {
		if errors.Is(err, ErrNoTicket) {
			return Ticket
		}
		return Retry
	}
	switch api.ErrCode {
	case CodeInvalidGrantType, CodeInvalidAppID, CodeInvalidSecret, CodeIPNotWhitelisted,
		CodeSecretFrozen, CodeRequireHTTPS, CodeRequirePOST, CodeWeComIPDenied, CodeComponentIP,
		CodeAdminConfirm, CodeIPRefused24h, CodeIPRefused1h, CodeBadSuiteSecret, CodeBadSuiteID:
		return Config
	case CodeBadAuthCode:
		// An auth code works once, within 10 minutes: asking again with
		// the same code cannot succeed. Only a new push brings a new one.
		return Config
	case CodeDailyQuota:
		return DailyQuota
	case CodeMinuteQuota:
		return MinuteQuota
	case CodeInvalidCredential, CodeInvalidToken, CodeTokenExpired, CodeBadSuiteToken, CodeSuiteTokenExpired:
		return Stale
	case CodeTicketExpired, CodeTicketInvalid, CodeBadSuiteTicket:
		return Ticket
	case CodeRefreshInvalid, CodeBadPermanentCode:
		return Revoked
	}
	return Retry
}

// ErrCode returns the WeChat errcode carried by err, or 0 if there is none.
func ErrCode(err error) int {
	var api *APIError
	if errors.As(err, &api) {
		return api.ErrCode
	}
	return 0
}

// scrub drops the request URL from transport errors: net/http puts the full
// URL, query string and all, into *url.Error, and the classic token endpoint
// carries the AppSecret in its query. What remains (dial errors, timeouts,
// cancellation) is kept and stays matchable with errors.Is.
func scrub(op string, err error) error {
	return fmt.Errorf("wechat: %s: %w", op, transportError(err))
}
