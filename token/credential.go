package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/wxtoken/wxtoken/wechat"
)

// Source fetches one credential's token from WeChat: it is the only
// code that knows the endpoint.
//
// Concurrency: the Manager runs one fetch at a time per credential (and,
// across instances sharing a store, only under the credential's lease), but
// fetches of different credentials run concurrently: a Source shared by
// several credentials must be safe for concurrent use.
//
// Errors: WeChat's refusal is returned as the *wechat.APIError the wechat
// package builds, so the Manager can classify it (wechat.Classify): a
// configuration error blocks the credential until its settings change; for
// a credential with a Parent, a stale token (40001, 40014, 42001) is the
// parent's, which the Manager reports. An error that wraps ErrNotCalled
// says no call reached WeChat, and is not counted against the day's calls.
// Anything else is transient and retried on the backoff. Fetch must return
// when ctx is done.
type Source interface {
	Fetch(ctx context.Context, req Request) (Fetched, error)
}

// Request is what the Manager hands a Source for one fetch.
type Request struct {
	// Force asks a source whose endpoint may answer the token already held
	// (stable_token) for a new one; other sources ignore it.
	Force bool
	// State is the durable value the last fetch returned (an authorizer's
	// refresh token), "" if none.
	State string
	// Parent is the current token of the credential's Parent (the access
	// token a ticket is fetched with, the component token an authorizer's
	// is): valid when the fetch starts.
	Parent string
}

// Fetched is a Source's answer.
type Fetched struct {
	Token wechat.Token
	// State, if not empty, replaces the durable value. It is stored in the
	// same compare-and-swap as Token, before Token is served, so a crash
	// can never keep one without the other.
	State string
}

// Checker is a Source that can ask WeChat whether a token still works,
// with a call that costs none of the token endpoint's daily quota
// (getcallbackip, get_api_domain_ip). A caller's report of the current
// token is checked this way before it costs a fetch.
type Checker interface {
	// Check returns nil if WeChat accepts tok; an error wechat.Classify
	// calls Stale if WeChat refuses it as invalid or expired (40001,
	// 40014, 42001); any other error if it could not tell.
	Check(ctx context.Context, tok string) error
}

// Credential is one token the Manager keeps fresh.
type Credential struct {
	// ID names the credential in the API, the store and logs.
	ID string
	// Kind is shown in status and logs ("mp", "wecom", ...).
	Kind string
	// Stable marks a source whose normal fetch returns the current token
	// while it is valid and whose replacement leaves the old token valid
	// until its own expiry (the stable_token endpoint). Other sources
	// issue a new token on every fetch, and the old one dies Overlap later.
	Stable bool
	// Source fetches the token.
	Source Source
	// Parent names the credential whose current token this one's fetch
	// needs (Request.Parent): a ticket's access token, an authorizer's
	// component token. A fetch waits for the parent to hold a valid
	// token; when WeChat refuses the parent's token inside it, the parent
	// is reported, and this credential is retried as soon as the parent
	// holds a new token.
	Parent string
	// Children are credentials derived from this one (its JS-SDK
	// tickets), added and restored with it; their Parent is this
	// credential. A child of a revoked credential is not served.
	Children []Credential
	// Repeating marks a source that answers the value it holds until that
	// value expires, with the full lifetime in every answer (JS-SDK
	// tickets: expires_in is 7200 however old the ticket is). The value's
	// expiry is counted from the first answer that carried it, it is
	// served to its expiry, and a fetch never ends it early.
	Repeating bool
	// Owner names the credential that created this one at run time (the
	// component of an authorizer); empty for configured credentials.
	Owner string
	// Fingerprint changes whenever the settings that reach WeChat change
	// (appid, secret, mode). A stored configuration error is forgotten
	// when it changes, so fixing a secret takes effect at once.
	Fingerprint string
}

// endsPrevious reports whether a fetch ends the token held before it
// (Overlap later), as classic, WeCom, component and authorizer fetches do.
func (c *Credential) endsPrevious() bool { return !c.Stable && !c.Repeating }

// LogValue keeps logs to the credential's name and kind.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("kind", c.Kind))
}

// Fingerprint hashes the given settings into a short, non-reversible
// value for Credential.Fingerprint.
func Fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
