package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/wxtoken/wxtoken/wechat"
)

// Source fetches a token for one credential from WeChat.
type Source interface {
	// Fetch returns a token. With force set, a source whose endpoint can
	// return the token already held (stable mode) asks for a new one;
	// other sources ignore it, since every fetch issues a new token.
	Fetch(ctx context.Context, force bool) (wechat.Token, error)
}

// StatefulSource is a Source whose fetch needs a durable value that the
// fetch may replace: an authorizer's refresh token. The Manager keeps the
// value in the credential's record and stores the new one in the same
// write as the token it came with, before that token is served.
type StatefulSource interface {
	Source
	FetchState(ctx context.Context, force bool, state string) (tok wechat.Token, newState string, err error)
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
	// Owner names the credential that created this one at run time (the
	// component of an authorizer); empty for configured credentials.
	Owner string
	// Fingerprint changes whenever the settings that reach WeChat change
	// (appid, secret, mode). A stored configuration error is forgotten
	// when it changes, so fixing a secret takes effect at once.
	Fingerprint string
}

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

// ClassicSource fetches from GET /cgi-bin/token.
type ClassicSource struct {
	Client        *wechat.Client
	AppID, Secret string
}

// Fetch implements Source.
func (s *ClassicSource) Fetch(ctx context.Context, force bool) (wechat.Token, error) {
	return s.Client.ClassicToken(ctx, s.AppID, s.Secret)
}

// Check implements Checker with getcallbackip.
func (s *ClassicSource) Check(ctx context.Context, tok string) error {
	_, err := s.Client.CallbackIP(ctx, tok)
	return err
}

// StableSource fetches from POST /cgi-bin/stable_token.
type StableSource struct {
	Client        *wechat.Client
	AppID, Secret string
}

// Fetch implements Source.
func (s *StableSource) Fetch(ctx context.Context, force bool) (wechat.Token, error) {
	return s.Client.StableToken(ctx, s.AppID, s.Secret, force)
}

// Check implements Checker with getcallbackip.
func (s *StableSource) Check(ctx context.Context, tok string) error {
	_, err := s.Client.CallbackIP(ctx, tok)
	return err
}

// WeComSource fetches one WeCom application's token.
type WeComSource struct {
	Client         *wechat.Client
	CorpID, Secret string
}

// Fetch implements Source.
func (s *WeComSource) Fetch(ctx context.Context, force bool) (wechat.Token, error) {
	return s.Client.WeComToken(ctx, s.CorpID, s.Secret)
}

// Check implements Checker with WeCom's get_api_domain_ip.
func (s *WeComSource) Check(ctx context.Context, tok string) error {
	_, err := s.Client.WeComAPIDomainIP(ctx, tok)
	return err
}
