package wxtest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tokenRandBytes makes tokens 128 base64 characters long after the serial,
// in the range of real ones (which are about 140 characters).
const tokenRandBytes = 96

// forget is how long a token is remembered past its expiry, so that late
// uses still answer 42001 rather than 40001 for an unknown token.
const forget = 24 * time.Hour

// token is one issued access token of any kind.
type token struct {
	value   string
	owner   *account
	expires time.Time

	// dies is when a replaced token stops working; zero while it has not
	// been replaced (or was renewed without invalidation).
	dies time.Time
	// killed is set by Expire.
	killed bool

	// wecom marks a token of the WeCom host, and app names its
	// application by the secret it was issued for (for a suite's
	// authorization, by its agentid); the WeCom host's endpoints take only
	// these, the API host's all others. corp is the corpid of a token a
	// suite's authorization issued, whose owner is the authorization
	// ("suiteid/corpid"); it is empty when the owner is the corp itself.
	wecom bool
	app   string
	corp  string

	// kind says what the token is for: an access token (the zero value),
	// or a suite's or a provider's token, which no endpoint that wants an
	// access token takes.
	kind tokenKind
}

// tokenKind is what a token is for.
type tokenKind int

const (
	kindAccess   tokenKind = iota // an access token, of any account
	kindSuite                     // a WeCom suite_access_token
	kindProvider                  // a WeCom provider_access_token
)

// corpID is the corp whose JS-SDK tickets a WeCom token fetches.
func (t *token) corpID() string {
	if t.corp != "" {
		return t.corp
	}
	return t.owner.id
}

// check returns 0 if t is valid at now, else the errcode a use answers.
func (t *token) check(now time.Time) int {
	switch {
	case t.killed, !now.Before(t.expires):
		return codeTokenExpired
	case !t.dies.IsZero() && !now.Before(t.dies):
		return codeInvalidCredential
	}
	return 0
}

// replace starts a replaced token's overlap: it lives on for overlap, but
// never past its own expiry.
func (t *token) replace(now time.Time, overlap time.Duration) {
	if t == nil || !t.dies.IsZero() {
		return
	}
	t.dies = now.Add(overlap)
}

// expiresIn is what an answer reports for t: whole seconds left at now.
func (t *token) expiresIn(now time.Time) int {
	return int(t.expires.Sub(now) / time.Second)
}

// TokenInfo is what the fake knows of one token it issued: an access token,
// or a WeCom suite's or provider's token.
type TokenInfo struct {
	// Account is the appid, corpid or authorizer appid the token was
	// issued to (a component's own tokens: its component appid; a suite's:
	// its suite id; a provider's: its corpid; a corp token a suite's
	// authorization issued: "suiteid/corpid").
	Account string
	// Expires is the end of its lifetime.
	Expires time.Time
	// Dies is when it stops working because it was replaced (the end of
	// its overlap) or its authorization withdrawn; zero while neither
	// happened.
	Dies time.Time
	// Killed reports that Expire ended it early.
	Killed bool
}

// TokenInfo returns what the fake knows of an access token it issued, so
// that a test which sees a use fail can tell a token ended early by Expire
// (which a token server cannot foresee) from one it should have known was
// replaced or past its lifetime. It reports false for a value the fake did
// not issue, or forgot a day after its expiry.
func (f *Fake) TokenInfo(value string) (TokenInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tokens[value]
	if t == nil {
		return TokenInfo{}, false
	}
	return TokenInfo{Account: t.owner.id, Expires: t.expires, Dies: t.dies, Killed: t.killed}, true
}

// randomString returns a value that is unique within f however Config.Rand
// behaves: a serial number, then n random bytes in URL-safe base64. The
// caller holds f.mu.
func (f *Fake) randomString(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(f.cfg.rand(), buf); err != nil {
		return "", fmt.Errorf("wxtest: reading randomness: %w", err)
	}
	f.serial++
	return strconv.FormatUint(f.serial, 10) + "_" + base64.RawURLEncoding.EncodeToString(buf), nil
}

// issue creates a new token for a, valid for the configured lifetime from
// now. The caller holds f.mu and decides what the token replaces.
func (f *Fake) issue(a *account, now time.Time) (*token, error) {
	value, err := f.randomString(tokenRandBytes)
	if err != nil {
		return nil, err
	}
	f.prune(a, now)
	t := &token{value: value, owner: a, expires: now.Add(f.cfg.lifetime())}
	f.tokens[value] = t
	a.live = append(a.live, t)
	a.stats.Issued++
	return t, nil
}

// prune forgets a's tokens that expired long ago, so that a long-running
// fake does not grow without bound. The caller holds f.mu.
func (f *Fake) prune(a *account, now time.Time) {
	kept := a.live[:0]
	for _, t := range a.live {
		if now.Sub(t.expires) > forget {
			delete(f.tokens, t.value)
			continue
		}
		kept = append(kept, t)
	}
	clear(a.live[len(kept):])
	a.live = kept
}

// wellFormed reports whether s looks like a token the fake could have
// issued; other strings answer 40014 rather than 40001.
func wellFormed(s string) bool {
	serial, rest, found := strings.Cut(s, "_")
	if !found || serial == "" || len(rest) != base64.RawURLEncoding.EncodedLen(tokenRandBytes) {
		return false
	}
	for _, c := range serial {
		if c < '0' || c > '9' {
			return false
		}
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// useToken validates the access_token of a token-using call and counts the
// use. It returns the token's account (nil for a token that is not the
// fake's) and, if the use fails, the answer to give. The caller holds f.mu.
func (f *Fake) useToken(r *http.Request, now time.Time) (*account, apiError, bool) {
	return f.useValue(r.URL.Query().Get("access_token"), now)
}

// useValue is useToken for a token value however the call carried it.
func (f *Fake) useValue(value string, now time.Time) (*account, apiError, bool) {
	if value == "" {
		return nil, fail(codeTokenMissing), false
	}
	t := f.tokens[value]
	if t == nil {
		if !wellFormed(value) {
			return nil, fail(codeInvalidToken), false
		}
		return nil, fail(codeInvalidCredential), false
	}
	if t.kind != kindAccess {
		// WeCom answers 40014 for a suite or provider token where an
		// application's token is wanted (WECHAT.md §1).
		t.owner.stats.DeadUses++
		return t.owner, fail(codeInvalidToken), false
	}
	if code := t.check(now); code != 0 {
		t.owner.stats.DeadUses++
		return t.owner, fail(code), false
	}
	t.owner.stats.GoodUses++
	return t.owner, apiError{}, true
}

// ipListReply is the answer of getcallbackip and get_api_domain_ip.
type ipListReply struct {
	IPList []string `json:"ip_list"`
}

// serveIPList answers getcallbackip and get_api_domain_ip, the cheap calls a
// token server makes to learn whether a token still works.
func (f *Fake) serveIPList(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	_, e, valid := f.useToken(r, f.cfg.now())
	f.mu.Unlock()
	if !valid {
		writeJSON(w, e)
		return
	}
	writeJSON(w, ipListReply{IPList: []string{"127.0.0.1"}})
}
