package token

import (
	"context"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
)

// WeChat's limits on forcing a stable token.
const (
	stableForcePerDay = 20
	stableForceGap    = 30 * time.Second
)

// fetch calls WeChat and applies the result to rec. In stable mode a
// forced refresh first tries the normal call, which may already return a
// new token, and forces only within WeChat's limits.
func (m *Manager) fetch(ctx context.Context, e *entry, rec *record, base string, force bool) error {
	tok, now, err := m.call(ctx, e, rec, false)
	if err == nil && e.cred.Stable && force && tok.Value == base {
		_, forced := rec.today(now)
		switch {
		case forced >= stableForcePerDay:
			err = &LimitedError{ID: e.cred.ID, Reason: "stable token force limit (20 a day) reached",
				RetryAfter: time.Until(nextBeijingMidnight(now))}
		case now.Sub(rec.LastForce) < stableForceGap:
			err = &LimitedError{ID: e.cred.ID, Reason: "stable token forced less than 30s ago",
				RetryAfter: rec.LastForce.Add(stableForceGap).Sub(now)}
		default:
			tok, now, err = m.call(ctx, e, rec, true)
		}
	}
	if _, limited := errors.AsType[*LimitedError](err); err != nil && !limited {
		return err
	}
	same := tok.Value == rec.Token
	switch {
	case same:
		rec.Repeats = !e.cred.Stable
	case rec.ExpiresAt.After(now):
		rec.Repeats = false // replaced before its expiry: not a repeating source
	}
	if tok.Value != rec.Token {
		rec.Token, rec.IssuedAt = tok.Value, now
	}
	rec.ExpiresAt = now.Add(tok.ExpiresIn)
	if same && e.cred.Repeating {
		// The answer's lifetime is the full one however old the value
		// is: count it from the first answer that carried the value.
		rec.ExpiresAt = rec.IssuedAt.Add(tok.ExpiresIn)
	}
	rec.RefreshAt = m.plan.refreshAt(now, rec.IssuedAt, rec.ExpiresAt)
	if rec.Repeats {
		// The next token can only be had once this one has expired:
		// fetch a second past the expiry WeChat gave in whole seconds,
		// and let requests wait for it meanwhile (Await).
		rec.RefreshAt = rec.ExpiresAt.Add(time.Second)
	}
	rec.Cause, rec.BlockedUntil, rec.Fingerprint, rec.RetryAt, rec.Reported = nil, time.Time{}, "", time.Time{}, false
	rec.Checked = time.Time{}
	return err
}

// call makes one upstream call, counting it. now is taken before the call,
// so lifetimes are measured conservatively. A credential with a parent is
// handed the parent's current token, or not called at all while the parent
// has none.
func (m *Manager) call(ctx context.Context, e *entry, rec *record, force bool) (wechat.Token, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.FetchTimeout)
	defer cancel()
	now := time.Now()
	req := Request{Force: force, State: rec.State}
	if e.cred.Parent != "" {
		parent, err := m.parentToken(e, now)
		if err != nil {
			return wechat.Token{}, now, err
		}
		req.Parent = parent
	}
	got, err := e.cred.Source.Fetch(ctx, req)
	if !errors.Is(err, ErrNotCalled) {
		rec.countFetch(now, force)
	}
	if err == nil && got.State != "" {
		rec.State = got.State
	}
	if e.cred.Parent != "" && wechat.Classify(err) == wechat.Stale {
		err = m.parentRefused(e, req.Parent, err)
	}
	return got.Token, now, err
}
