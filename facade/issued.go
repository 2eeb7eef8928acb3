package facade

import (
	"context"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/component"
)

// Tickets and authorizer tokens are requested with an access token alone
// (WeChat gives them to whoever holds the token), so the facade maps a
// token back to its credential. It remembers every token it handed out
// until the token's expiry, which covers one recently replaced (a classic
// token lives an overlap past its replacement) that a client still holds.
// A token it did not hand out itself (another instance did, or the /v1
// API) is found by scanning the manager's current tokens, at most once a
// second: a request with an unknown token waits for the next scan rather
// than making one of its own, so that a stream of made-up tokens costs one
// scan a second, not one each.

// scanEvery is the least time between two scans.
const scanEvery = time.Second

// issuedToken is what a token handed out is known as.
type issuedToken struct {
	id      string
	family  Family
	owner   string // the platform of an authorizer
	expires time.Time
	// sdk is the SDK of the clients it was handed to, for the
	// expires_in of what is asked with it; "" if not known, or if
	// clients of different SDKs hold it (the default serves them all).
	sdk   string
	mixed bool
}

// issued is the index of tokens handed out, by token.
type issued struct {
	scanFn func(note func(tok string, it issuedToken))

	mu sync.RWMutex
	m  map[string]issuedToken

	// scanning holds one token while a caller scans or waits to; a
	// channel rather than a mutex, so that a waiter can give up.
	scanning chan struct{}
	lastScan time.Time // when the last scan began; guarded by scanning

	pruneMu   sync.Mutex
	lastPrune time.Time
}

// pruneEvery is how often note drops expired tokens, so that the index
// stays bounded when nothing scans.
const pruneEvery = time.Minute

func newIssued(scan func(note func(tok string, it issuedToken))) *issued {
	return &issued{scanFn: scan, m: map[string]issuedToken{}, scanning: make(chan struct{}, 1)}
}

// note records a token handed out.
func (x *issued) note(tok string, it issuedToken) {
	x.mu.RLock()
	old, ok := x.m[tok]
	x.mu.RUnlock()
	if ok {
		it.mixed = old.mixed || (old.sdk != it.sdk && old.sdk != "")
	}
	if it.mixed {
		it.sdk = ""
	}
	if ok && old == it {
		return
	}
	x.mu.Lock()
	x.m[tok] = it
	x.mu.Unlock()
	x.prune(time.Now())
}

// prune drops expired tokens, at most once every pruneEvery.
func (x *issued) prune(now time.Time) {
	x.pruneMu.Lock()
	if now.Sub(x.lastPrune) < pruneEvery {
		x.pruneMu.Unlock()
		return
	}
	x.lastPrune = now
	x.pruneMu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	for tok, it := range x.m {
		if !it.expires.After(now) {
			delete(x.m, tok)
		}
	}
}

func (x *issued) get(tok string) (issuedToken, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	it, ok := x.m[tok]
	return it, ok
}

// lookup returns what tok was issued as, waiting for a scan begun after
// the call if it is not known yet.
func (x *issued) lookup(ctx context.Context, tok string) (issuedToken, bool) {
	if it, ok := x.get(tok); ok {
		return it, true
	}
	asked := time.Now()
	select {
	case x.scanning <- struct{}{}:
	case <-ctx.Done():
		return issuedToken{}, false
	}
	defer func() { <-x.scanning }()
	if !x.lastScan.After(asked) {
		if wait := scanEvery - time.Since(x.lastScan); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return issuedToken{}, false
			}
		}
		x.lastScan = time.Now()
		x.rescan(x.lastScan)
	}
	return x.get(tok)
}

// rescan adds the manager's current tokens and drops expired ones.
func (x *issued) rescan(now time.Time) {
	found := map[string]issuedToken{}
	x.scanFn(func(tok string, it issuedToken) { found[tok] = it })
	x.pruneMu.Lock()
	x.lastPrune = time.Time{}
	x.pruneMu.Unlock()
	x.prune(now)
	x.mu.Lock()
	defer x.mu.Unlock()
	for tok, it := range found {
		if _, known := x.m[tok]; !known { // what was handed out knows its SDK
			x.m[tok] = it
		}
	}
}

// scan reports the current token of every credential the facade names:
// the configured ones and the platforms' authorizers.
func (f *Facade) scan(note func(tok string, it issuedToken)) {
	for _, id := range f.tokens.IDs() {
		s, err := f.tokens.Snapshot(id)
		if err != nil || s.Token == "" || s.Revoked {
			continue
		}
		fam, ok := f.idx.Load().family[id]
		if !ok && s.Kind == component.KindAuthorizer {
			fam, ok = MP, true
		}
		if ok {
			note(s.Token, issuedToken{id: id, family: fam, owner: s.Owner, expires: s.ExpiresAt})
		}
	}
}
