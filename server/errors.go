package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Errors of the API itself.
var (
	errNoKey     = errors.New("missing bearer key: send Authorization: Bearer <client key>")
	errBadKey    = errors.New("unknown client key")
	errForbidden = errors.New("this client may not use this credential")
	errNotFound  = errors.New("no such endpoint")
	// errUnreachable: a proxied call did not reach WeChat.
	errUnreachable = errors.New("WeChat could not be reached")
)

// methodNotAllowed is a known path asked with a method it does not take.
type methodNotAllowed struct {
	method string
	allow  []string
}

func (e *methodNotAllowed) Error() string {
	return fmt.Sprintf("method %s not allowed here; use %s", e.method, strings.Join(e.allow, " or "))
}

// notPermitted is a request the client's key lacks a permission for; the
// message names the permission.
type notPermitted struct{ msg string }

func (e *notPermitted) Error() string { return e.msg }

// badRequest is a request the client must fix.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// apiError is the JSON error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	ErrCode int    `json:"errcode,omitempty"`
	ErrMsg  string `json:"errmsg,omitempty"`
}

// writeError is the one place an error becomes an HTTP status and body.
// It returns the status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	status, body := classify(err)
	if ra := retryAfter(err); ra > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxtoken"`)
	}
	if mna, ok := errors.AsType[*methodNotAllowed](err); ok {
		w.Header().Set("Allow", strings.Join(mna.allow, ", "))
	}
	if errors.As(err, new(*bodyError)) {
		// Anyone can send a body cut short; at error level, that would let
		// an outsider flood the log.
		s.log.Debug("request body not read", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusBadGateway {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, struct {
		Error apiError `json:"error"`
	}{body})
	return status
}

func classify(err error) (int, apiError) {
	var (
		br      *badRequest
		maxErr  *http.MaxBytesError
		unavail *token.UnavailableError
		limited *token.LimitedError
		blocked *token.BlockedError
		fetch   *token.FetchError
	)
	var (
		stale *staleError
		body  *bodyError
	)
	switch {
	// The client's own failures first: they may wrap a net.Error, which
	// further down would be taken for a failed call to WeChat.
	case errors.As(err, &body) && body.timeout():
		return http.StatusRequestTimeout, apiError{Code: "request_timeout", Message: "request body not received within the server's read timeout"}
	case errors.As(err, &body):
		return http.StatusBadRequest, apiError{Code: "bad_request", Message: err.Error()}
	case errors.Is(err, errSignature), errors.Is(err, callback.ErrSignature):
		return http.StatusUnauthorized, apiError{Code: "bad_signature", Message: err.Error()}
	case errors.As(err, &stale):
		return http.StatusBadRequest, apiError{Code: "stale_timestamp", Message: err.Error()}
	case errors.Is(err, errReplay):
		return http.StatusConflict, apiError{Code: "replayed", Message: err.Error()}
	case errors.As(err, new(*replayUnchecked)):
		return http.StatusServiceUnavailable, apiError{Code: "store_unavailable", Message: err.Error()}
	case errors.Is(err, callback.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, apiError{Code: "too_large", Message: err.Error()}
	case errors.Is(err, callback.ErrMalformed), errors.Is(err, callback.ErrCiphertext),
		errors.Is(err, callback.ErrPadding), errors.Is(err, callback.ErrReceiveID):
		return http.StatusBadRequest, apiError{Code: "bad_message", Message: err.Error()}
	case errors.Is(err, token.ErrRevoked):
		return http.StatusGone, apiError{Code: "revoked", Message: "the account withdrew its authorization"}
	case errors.As(err, new(*tooMany)):
		return http.StatusTooManyRequests, apiError{Code: "too_many_watches", Message: err.Error()}
	case errors.As(err, new(*token.AmbiguousError)):
		return http.StatusConflict, apiError{Code: "ambiguous", Message: err.Error()}
	case errors.Is(err, token.ErrOwned):
		return http.StatusConflict, apiError{Code: "conflict", Message: err.Error()}
	case errors.Is(err, component.ErrInvalidImport):
		return http.StatusBadRequest, apiError{Code: "bad_request", Message: err.Error()}
	case errors.Is(err, component.ErrWrongPlatform):
		return http.StatusBadRequest, apiError{Code: "bad_message", Message: err.Error()}
	case errors.Is(err, errNoKey), errors.Is(err, errBadKey):
		return http.StatusUnauthorized, apiError{Code: "unauthorized", Message: err.Error()}
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, apiError{Code: "forbidden", Message: err.Error()}
	case errors.As(err, new(*notPermitted)):
		return http.StatusForbidden, apiError{Code: "forbidden", Message: err.Error()}
	case errors.Is(err, token.ErrUnknown):
		return http.StatusNotFound, apiError{Code: "not_found", Message: "unknown credential"}
	case errors.Is(err, errNoTicket):
		return http.StatusNotFound, apiError{Code: "not_found", Message: err.Error()}
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, apiError{Code: "not_found", Message: err.Error()}
	case errors.As(err, new(*methodNotAllowed)):
		return http.StatusMethodNotAllowed, apiError{Code: "method_not_allowed", Message: err.Error()}
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, apiError{Code: "too_large",
			Message: fmt.Sprintf("request body over %d bytes", maxErr.Limit)}
	case errors.As(err, &br):
		return http.StatusBadRequest, apiError{Code: "bad_request", Message: br.msg}
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, apiError{Code: "refresh_limited", Message: limited.Error()}
	case errors.As(err, &blocked):
		return http.StatusServiceUnavailable, withCause(apiError{Code: "blocked", Message: blocked.Error()}, blocked.Cause)
	case errors.As(err, &unavail):
		return http.StatusServiceUnavailable, withCause(apiError{Code: "unavailable", Message: unavail.Error()}, unavail.Cause)
	case errors.As(err, new(*token.StoreError)):
		// Before the upstream cases: the store's own failure may wrap a
		// net.Error (Redis unreachable), which is not WeChat's.
		return http.StatusServiceUnavailable, apiError{Code: "store_unavailable", Message: err.Error()}
	case errors.As(err, &fetch):
		e := apiError{Code: "upstream_error", Message: fetch.Error()}
		if api, ok := errors.AsType[*wechat.APIError](err); ok {
			e.ErrCode, e.ErrMsg = api.ErrCode, api.ErrMsg
		}
		return http.StatusBadGateway, e
	case errors.Is(err, errUnreachable):
		return http.StatusBadGateway, apiError{Code: "upstream_error", Message: err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, apiError{Code: "bad_request", Message: "identifier too long"}
	case errors.As(err, new(*wechat.APIError)):
		api, _ := errors.AsType[*wechat.APIError](err)
		return http.StatusBadGateway, apiError{Code: "upstream_error", Message: err.Error(), ErrCode: api.ErrCode, ErrMsg: api.ErrMsg}
	case errors.As(err, new(*wechat.HTTPError)), errors.Is(err, wechat.ErrBadResponse), errors.As(err, new(net.Error)):
		return http.StatusBadGateway, apiError{Code: "upstream_error", Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, apiError{Code: "timeout", Message: "gave up waiting for the refresh"}
	case errors.Is(err, token.ErrClosed):
		return http.StatusServiceUnavailable, apiError{Code: "shutting_down", Message: "server is shutting down"}
	case errors.As(err, new(*notStored)):
		return http.StatusServiceUnavailable, apiError{Code: "not_stored", Message: err.Error()}
	}
	return http.StatusInternalServerError, apiError{Code: "internal", Message: "internal error"}
}

func withCause(e apiError, c *token.Cause) apiError {
	if c != nil && c.ErrCode != 0 {
		e.ErrCode, e.ErrMsg = c.ErrCode, c.Message
	}
	return e
}

func retryAfter(err error) time.Duration {
	var (
		limited *token.LimitedError
		blocked *token.BlockedError
		fetch   *token.FetchError
	)
	switch {
	case errors.As(err, &limited):
		return limited.RetryAfter
	case errors.As(err, &blocked):
		return time.Until(blocked.Until)
	case errors.As(err, &fetch) && !fetch.RetryAt.IsZero():
		return time.Until(fetch.RetryAt)
	}
	return 0
}

// notStored is a push whose content could not be acted on and stored
// (no component token yet, the store failing): WeChat delivers it again.
type notStored struct{ err error }

func (e *notStored) Error() string { return "push not stored, deliver again: " + e.err.Error() }
func (e *notStored) Unwrap() error { return e.err }
