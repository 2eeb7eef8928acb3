package token

import (
	"context"
	"errors"
	"time"
)

// An instance that cannot reach the store never fetches on its own a token
// whose fetch ends the one its peers serve: WeChat's classic endpoint, a
// platform's and its authorizers' issue a new token on every call and
// end the previous one about five minutes later, so two instances fetching
// apart knock each other out. But a normal-mode stable_token call, and a
// WeCom gettoken seen to answer the current token while it is valid, hand
// every caller the same token: instances fetching them alone cannot harm
// each other. Those credentials stay served through a store outage of any
// length, fetched by each instance alone when due.

// soloSafe reports whether e's source hands every caller the same token,
// so this instance may fetch it without the store's lease. e.mu must be
// held.
func soloSafe(e *entry) bool {
	return e.cred.Stable || e.cred.Repeating || e.rec.Repeats
}

// solo follows an attempt that failed on the store: if the credential is
// solo-safe and its refresh is due, it fetches with a normal call, never a
// forced one, serves the result from memory and counts the call there. It
// returns false, and o stands, otherwise.
func (m *Manager) solo(ctx context.Context, e *entry, o outcome) (outcome, bool) {
	if _, storeErr := errors.AsType[*StoreError](o.err); !storeErr || ctx.Err() != nil {
		return o, false
	}
	e.mu.Lock()
	rec, safe := e.rec.record(), soloSafe(e)
	e.mu.Unlock()
	now := time.Now()
	if !safe || (rec.Token != "" && rec.RefreshAt.After(now) && rec.ExpiresAt.After(now)) {
		return o, false
	}
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-ctx.Done():
		return o, false
	}
	base := rec.Token
	if err := m.fetch(ctx, e, &rec, base, false); err != nil {
		// Keep the call's count and the failure's backoff in memory
		// with the rest of what could not be stored.
		m.log.Debug("fetch without the store failed", "credential", e.cred.ID, "kind", e.cred.Kind, "err", err)
		next := m.failed(e, &rec, err)
		return outcome{fetched: true, unsaved: true, rec: rec, ver: o.ver, next: next, cause: o.cause, err: o.err}, true
	}
	c := *o.cause
	c.Message = "store unreachable; serving a token this instance fetched alone: " + c.Message
	m.log.Warn("fetched alone while the store is unreachable", "credential", e.cred.ID, "kind", e.cred.Kind,
		"token", prefix(rec.Token), "same", rec.Token == base, "expires_at", rec.ExpiresAt.UTC())
	return outcome{fetched: true, unsaved: true, rec: rec, ver: o.ver, next: rec.RefreshAt, cause: &c, err: o.err}, true
}
