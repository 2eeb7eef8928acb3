package token

import (
	"context"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
)

// causeStore marks a failure of our own store, never persisted.
const causeStore = "store"

// refuseReport applies the limits on report-forced refreshes. A refused
// report keeps the plan (re-armed: a planned tick may have joined this
// flight).
func (m *Manager) refuseReport(e *entry, rec record, ver uint64, now time.Time, dead bool) (outcome, bool) {
	planned := outcome{rec: rec, ver: ver, next: m.planned(e, rec, now)}
	if wait := rec.LastFetch.Add(m.cfg.MinForceInterval).Sub(now); !dead && !rec.LastFetch.IsZero() && wait > 0 {
		planned.err = &LimitedError{ID: e.cred.ID, Reason: "refreshed moments ago", RetryAfter: wait}
		return planned, true
	}
	if fetches, _ := rec.today(now); fetches >= m.cfg.ForceBudget {
		// Reports alone must not spend the daily quota that planned
		// refreshes need (2000 calls, 200 for test accounts).
		planned.err = &LimitedError{ID: e.cred.ID, Reason: "today's budget for reported refreshes is spent",
			RetryAfter: time.Until(nextBeijingMidnight(now))}
		return planned, true
	}
	return outcome{}, false
}

// backingOff answers a refresh due before the credential's shared retry
// time: a failure (ours or a peer's) set it, and calling WeChat again
// sooner is how a cluster turns an outage into a storm. A planned
// refresh adopts the record and waits; a report is stored as such, so
// the token stays marked until a fetch replaces it, and is answered with
// the failure.
func (m *Manager) backingOff(ctx context.Context, e *entry, rec record, ver uint64, force bool) outcome {
	o := outcome{rec: rec, ver: ver, next: rec.RetryAt}
	if !force {
		return o
	}
	msg := "WeChat is failing"
	if rec.Cause != nil {
		msg = rec.Cause.Message
	}
	o.err = &FetchError{ID: e.cred.ID, Err: errors.New(msg), RetryAt: rec.RetryAt}
	if nv, err := m.cfg.Store.Put(ctx, recordKey(e.cred.ID), rec.encode(), ver); err == nil {
		o.ver = nv
	} else {
		o.rec.Reported = false // not stored: nothing to show
	}
	return o
}

// failed records a failed fetch in rec and returns when to try again.
func (m *Manager) failed(e *entry, rec *record, err error) time.Time {
	now := time.Now()
	if errors.Is(err, errNoParent) {
		return m.waitParent(rec, err, now)
	}
	if ra, ok := errors.AsType[*RetryAfterError](err); ok {
		c := &Cause{Class: wechat.Classify(ra.Err).String(), ErrCode: wechat.ErrCode(err), Message: err.Error(), Since: now, Failures: 1}
		if p := rec.Cause; p != nil && p.Class == c.Class && p.ErrCode == c.ErrCode {
			c.Since, c.Failures = p.Since, p.Failures+1
		}
		rec.Cause = c
		rec.RetryAt = now.Add(ra.After + m.plan.spread(time.Minute))
		return rec.RetryAt
	}
	class := wechat.Classify(err)
	if class == wechat.Stale {
		// 40001 from a token endpoint means a wrong secret (WeCom).
		class = wechat.Config
	}
	c := &Cause{Class: class.String(), ErrCode: wechat.ErrCode(err), Message: err.Error(), Since: now, Failures: 1}
	if p := rec.Cause; p != nil && p.Class == c.Class && p.ErrCode == c.ErrCode {
		c.Since, c.Failures = p.Since, p.Failures+1
	}
	rec.Cause = c
	switch class {
	case wechat.DailyQuota:
		rec.BlockedUntil = nextBeijingMidnight(now).Add(m.plan.spread(time.Minute))
	case wechat.MinuteQuota:
		rec.RetryAt = now.Add(m.plan.spread(time.Minute))
		return rec.RetryAt
	case wechat.Ticket:
		// Waiting for WeChat's next ticket push; its arrival wakes us.
		rec.RetryAt = now.Add(m.plan.spread(m.cfg.TicketRetry))
		return rec.RetryAt
	case wechat.Config, wechat.Revoked:
		rec.BlockedUntil = now.Add(m.plan.spread(m.cfg.ConfigRetry))
	default:
		rec.RetryAt = now.Add(m.plan.backoff(c.Failures, now, rec.ExpiresAt))
		return rec.RetryAt
	}
	rec.Fingerprint = e.cred.Fingerprint
	return rec.BlockedUntil
}

// storeFailed plans a retry after a store error without touching WeChat:
// an instance that cannot coordinate must not fetch on its own.
func (m *Manager) storeFailed(e *entry, err error) outcome {
	e.mu.Lock()
	e.storeFailures++
	rec, ver := e.rec.record(), e.ver
	c := m.storeCause(e, err)
	e.mu.Unlock()
	now := time.Now()
	return outcome{rec: rec, ver: ver, cause: c, err: &StoreError{ID: e.cred.ID, Err: err},
		next: now.Add(m.plan.backoff(c.Failures, now, rec.ExpiresAt))}
}

// storeCause describes a store failure; e.mu must be held.
func (m *Manager) storeCause(e *entry, err error) *Cause {
	return &Cause{Class: causeStore, Message: err.Error(), Since: time.Now(), Failures: int(e.storeFailures)}
}

// waitParent records a fetch that could not use its parent's token. The
// parent's next token wakes the credential; the retry time is only a
// fallback, should that wake be lost (the parent refreshed by a peer).
func (m *Manager) waitParent(rec *record, err error, now time.Time) time.Time {
	c := &Cause{Class: causeParent, ErrCode: wechat.ErrCode(err), Message: err.Error(), Since: now, Failures: 1}
	if p := rec.Cause; p != nil && p.Class == c.Class {
		c.Since, c.Failures = p.Since, p.Failures+1
	}
	rec.Cause = c
	rec.RetryAt = now.Add(m.plan.backoff(c.Failures, now, rec.ExpiresAt))
	return rec.RetryAt
}
