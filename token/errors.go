package token

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors of the Manager.
var (
	// ErrUnknown: no credential has that id.
	ErrUnknown = errors.New("token: unknown credential")
	// ErrClosed: the Manager has been closed.
	ErrClosed = errors.New("token: manager closed")
	// ErrRevoked: the credential's authorization was withdrawn.
	ErrRevoked = errors.New("token: authorization revoked")
	// ErrNotCalled is wrapped by a Source's error when it failed before
	// calling WeChat (no ticket yet, its parent's token unavailable): the
	// attempt is not counted against the day's calls, which must equal
	// what WeChat saw, and which the report budget is measured by.
	ErrNotCalled = errors.New("token: WeChat not called")
)

// UnavailableError reports that a credential has no valid token to hand
// out. Cause, when known, says why (the last failure).
type UnavailableError struct {
	ID    string
	Cause *Cause
}

func (e *UnavailableError) Error() string {
	if e.Cause == nil {
		return fmt.Sprintf("token: %s: no valid token yet", e.ID)
	}
	return fmt.Sprintf("token: %s: no valid token: %s", e.ID, e.Cause.Message)
}

// AmbiguousError reports an id that names no credential itself and
// several within their owners' namespaces: an appid that two platforms
// hold as an authorizer. The caller must name one of the Candidates.
type AmbiguousError struct {
	ID         string
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("token: %q is held by several owners; name one of %s", e.ID, strings.Join(e.Candidates, ", "))
}

// LimitedError reports a refresh that was asked for but not made, because
// it would break a rate limit (our minimum interval between forced
// refreshes, or WeChat's limits on forcing a stable token).
type LimitedError struct {
	ID         string
	Reason     string
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("token: %s: refresh refused: %s; retry after %s", e.ID, e.Reason, e.RetryAfter.Round(time.Second))
}

// BlockedError reports a refresh that was not made because the credential
// is stopped: its configuration was refused or its daily quota is spent.
type BlockedError struct {
	ID    string
	Until time.Time
	Cause *Cause
}

func (e *BlockedError) Error() string {
	msg := "blocked"
	if e.Cause != nil {
		msg = e.Cause.Message
	}
	return fmt.Sprintf("token: %s: not refreshing until %s: %s", e.ID, e.Until.UTC().Format(time.RFC3339), msg)
}

// FetchError is a refresh that reached WeChat and failed; Err is the
// upstream error (see wechat.Classify). RetryAt, when set, is the
// credential's next attempt: a report made while WeChat is failing is
// answered with the last failure rather than another call.
type FetchError struct {
	ID      string
	Err     error
	RetryAt time.Time
}

func (e *FetchError) Error() string { return fmt.Sprintf("token: %s: refresh failed: %v", e.ID, e.Err) }
func (e *FetchError) Unwrap() error { return e.Err }

// StoreError is a refresh that could not coordinate through the store. No
// fetch was made: an instance that cannot reach its peers' state must not
// fetch on its own.
type StoreError struct {
	ID  string
	Err error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("token: %s: store unavailable: %v", e.ID, e.Err)
}
func (e *StoreError) Unwrap() error { return e.Err }

// RetryAfterError is a source's failure that says when to try again, for
// a limit whose window the errcode alone does not tell (WeCom answers its
// hourly ticket limit with 45009, the code the Official Account platform
// uses for its daily quota). The credential waits that long, on every
// instance, instead of what the errcode's class would say.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry in %s)", e.Err, e.After.Round(time.Second))
}

func (e *RetryAfterError) Unwrap() error { return e.Err }
