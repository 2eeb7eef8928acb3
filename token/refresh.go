package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/wechat"
)

// WeChat's limits on forcing a stable token.
const (
	stableForcePerDay = 20
	stableForceGap    = 30 * time.Second
)

// causeStore marks a failure of our own store, never persisted.
const causeStore = "store"

// need is why a refresh runs.
type need int

const (
	planned  need = iota // its plan is due
	forced               // replace the token now (an operator, a dependent's failure)
	reported             // a caller reported the token dead: check it first
)

// flight is the one refresh in progress for a credential; everyone who
// needs it waits on done.
type flight struct {
	force  bool
	check  bool // a report: ask WeChat whether the token works first
	done   chan struct{}
	snap   *Snapshot
	result Result
	err    error
}

// outcome is what one refresh attempt decided.
type outcome struct {
	// fetched: WeChat was called (otherwise a peer's record was adopted,
	// or the refresh was refused before any call).
	fetched bool
	rec     record
	unsaved bool // rec was fetched but could not be stored
	ver     uint64
	next    time.Time
	cause   *Cause // nil: rec.Cause
	// live: WeChat confirmed the reported token works; nothing fetched.
	live bool
	err  error
}

// refresh replaces base, the token the caller holds or the one due for its
// planned refresh, unless it has been replaced already. Concurrent callers
// with the same base share one flight, which runs on the Manager's context
// so that a caller giving up does not cancel it for the others.
func (m *Manager) refresh(ctx context.Context, e *entry, base string, n need) (*Snapshot, Result, error) {
	force := n != planned
	for {
		e.mu.Lock()
		if cur := e.snap.Load(); cur.Token != base {
			e.mu.Unlock()
			return cur, Replaced, nil
		}
		f := e.flight
		if f == nil {
			if f = m.launch(e, base, n); f == nil {
				e.mu.Unlock()
				return nil, 0, ErrClosed
			}
		}
		e.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		// A caller that needs the token replaced and joined a planned
		// refresh which kept it (stable mode) starts a forced one.
		if f.err != nil || !force || f.force || f.snap.Token != base {
			return f.snap, f.result, f.err
		}
	}
}

// launch starts a flight replacing base; e.mu must be held and no flight
// running. It returns nil once the Manager is closed.
func (m *Manager) launch(e *entry, base string, n need) *flight {
	if !m.enter() {
		return nil
	}
	f := &flight{force: n != planned, check: n == reported, done: make(chan struct{})}
	e.flight = f
	go m.fly(e, f, base)
	return f
}

// InvalidateAsync is Invalidate without waiting: it starts the refresh of
// stale if stale is still current and none is running. A refresher that
// learns its dependency's token was refused (an authorizer's component
// token) uses it, rather than wait on a refresh from inside another.
func (m *Manager) InvalidateAsync(id, stale string) {
	e, err := m.entry(id)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.snap.Load().Token == stale && e.flight == nil {
		m.launch(e, stale, forced)
	}
}

// fly runs one flight and publishes its outcome.
func (m *Manager) fly(e *entry, f *flight, base string) {
	defer m.wg.Done()
	start := time.Now()
	o := m.safeAttempt(e, base, f)

	e.mu.Lock()
	if !o.next.IsZero() {
		if o.fetched {
			e.unsaved = o.unsaved
		}
		m.settle(e, o.rec, o.ver, o.next, o.cause)
	}
	f.snap, f.err = e.snap.Load(), o.err
	switch {
	case o.live:
		f.result = Live
	case f.snap.Token == base:
		f.result = Kept
	case o.fetched:
		f.result = Refreshed
	default:
		f.result = Replaced
	}
	e.flight = nil
	e.mu.Unlock()
	close(f.done)

	m.logRefresh(e, f, o, time.Since(start))
}

// causePanic marks a refresh that panicked (in a source, or in our code).
const causePanic = "panic"

// safeAttempt runs one attempt, turning a panic into a failure of this
// credential alone: it is logged with the credential and retried on the
// backoff, the flight completes so its waiters are answered, and every
// other credential keeps refreshing. The lease and the upstream slot are
// released by attempt's deferred calls as the panic unwinds.
func (m *Manager) safeAttempt(e *entry, base string, f *flight) (o outcome) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		m.log.Error("refresh panicked", "credential", e.cred.ID, "kind", e.cred.Kind,
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		e.mu.Lock()
		rec, ver, prev := e.rec, e.ver, e.snap.Load().Cause
		e.mu.Unlock()
		now := time.Now()
		c := &Cause{Class: causePanic, Message: fmt.Sprintf("refresh panicked: %v", r), Since: now, Failures: 1}
		if prev != nil && prev.Class == causePanic {
			c.Since, c.Failures = prev.Since, prev.Failures+1
		}
		o = outcome{rec: rec, ver: ver, cause: c, err: fmt.Errorf("token: %s: %s", e.cred.ID, c.Message),
			next: now.Add(m.plan.backoff(c.Failures, now, rec.ExpiresAt))}
	}()
	o = m.attempt(m.ctx, e, base, f)
	if so, ok := m.solo(m.ctx, e, o); ok {
		o = so
	}
	return o
}

// settle publishes rec as the entry's state and plans its next refresh.
// e.mu must be held.
func (m *Manager) settle(e *entry, rec record, ver uint64, next time.Time, cause *Cause) {
	if ver < e.ver {
		// A slower path read the record before a newer write (a
		// revocation, a re-authorization) was published: keep the newer
		// state, and its timer.
		return
	}
	if cause == nil {
		cause = rec.Cause
		e.storeFailures = 0
	}
	e.rec, e.ver, e.next = rec, ver, next
	e.snap.Store(m.snapshot(e, rec, next, cause))
	close(e.changed)
	e.changed = make(chan struct{})
	if e.timer != nil {
		e.timer.Stop()
	}
	if m.ctx.Err() == nil && !rec.Revoked {
		e.timer = time.AfterFunc(time.Until(next), func() { m.tick(e) })
	}
}

// tick runs a planned refresh.
func (m *Manager) tick(e *entry) {
	if !m.enter() {
		return
	}
	defer m.wg.Done()
	m.refresh(m.ctx, e, e.snap.Load().Token, planned)
}

// attempt is one refresh: read the store, take the lease, read again,
// then decide.
func (m *Manager) attempt(ctx context.Context, e *entry, base string, f *flight) outcome {
	force := f.force
	id := e.cred.ID
	rec, ver, err := m.load(ctx, id)
	if err != nil {
		return m.storeFailed(e, err)
	}
	if m.adoptable(rec, base, force) {
		return outcome{rec: rec, ver: ver, next: m.planned(e, rec, time.Now())}
	}

	// Wait for an upstream slot before taking the lease, so that a long
	// queue of refreshes does not sit on leases it cannot use yet.
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-ctx.Done():
		return m.storeFailed(e, ctx.Err())
	}
	lease, err := m.cfg.Store.Lock(ctx, "lock/"+recordKey(id), m.cfg.LockTTL)
	if err != nil {
		return m.storeFailed(e, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		lease.Unlock(ctx)
	}()
	if rec, ver, err = m.load(ctx, id); err != nil {
		return m.storeFailed(e, err)
	}
	e.mu.Lock()
	if e.unsaved && ver == e.ver {
		// Our last fetch could not be stored, and nobody wrote since:
		// ours is newer than the store's (it may carry a rotated
		// refresh token), so it is the one to build on.
		rec = e.rec
	}
	e.mu.Unlock()
	if m.adoptable(rec, base, force) {
		return outcome{rec: rec, ver: ver, next: m.planned(e, rec, time.Now())}
	}
	return m.decide(ctx, e, base, f, rec, ver)
}

// decide applies the policy to the record read under the lease (revoked,
// blocked, the shared retry time, a report's check and limits) and, if a
// call is due, records the intent and makes it.
func (m *Manager) decide(ctx context.Context, e *entry, base string, f *flight, rec record, ver uint64) outcome {
	now := time.Now()
	if rec.Revoked {
		return outcome{rec: rec, ver: ver, err: ErrRevoked}
	}
	if rec.BlockedUntil.After(now) && rec.Fingerprint == e.cred.Fingerprint {
		return outcome{rec: rec, ver: ver, next: rec.BlockedUntil,
			err: &BlockedError{ID: e.cred.ID, Until: rec.BlockedUntil, Cause: rec.Cause}}
	}
	e.mu.Lock()
	woken := e.woken
	e.woken = false
	e.mu.Unlock()
	backoff := rec.RetryAt.After(now) && !woken
	if f.force && !backoff {
		v := verdictUnknown
		if f.check {
			v = m.verify(ctx, e, rec, now)
		}
		if v == verdictLive {
			return m.confirmedLive(ctx, e, rec, ver, now)
		}
		// A token WeChat itself refused is replaced now, whatever the
		// interval between forced refreshes says: WeChat is answering,
		// and every caller is failing.
		if o, refused := m.refuseReport(e, rec, ver, now, v == verdictDead); refused {
			return o
		}
	}
	if f.force {
		rec.Reported = true
	}
	if backoff {
		// WeChat failed the last attempt: a report, checked or not,
		// waits for the shared retry time like everyone else, or an
		// outage turns every report into a call.
		return m.backingOff(ctx, e, rec, ver, f.force)
	}
	if !e.cred.Stable {
		// Record the intent before the call: the call ends the stored
		// token Overlap later, whether or not we live to store the new
		// one.
		rec.Fetching = now
		nv, err := m.cfg.Store.Put(ctx, recordKey(e.cred.ID), rec.encode(), ver)
		if errors.Is(err, store.ErrConflict) {
			return m.reload(ctx, e)
		}
		if err != nil {
			return m.storeFailed(e, err)
		}
		ver = nv
	}
	return m.fetchAndStore(ctx, e, base, f.force, rec, ver)
}

// fetchAndStore calls WeChat and writes what it answered over version ver,
// success or failure, with a compare-and-swap.
func (m *Manager) fetchAndStore(ctx context.Context, e *entry, base string, force bool, rec record, ver uint64) outcome {
	id := e.cred.ID
	ferr := m.fetch(ctx, e, &rec, base, force)
	rec.Fetching = time.Time{}
	limited, isLimited := errors.AsType[*LimitedError](ferr)
	next := rec.RefreshAt
	if ferr != nil && !isLimited {
		next = m.failed(e, &rec, ferr)
	}
	// What WeChat answered must reach the store even if we are closing.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	nv, err := m.put(wctx, id, rec, ver)
	unsaved := false
	switch {
	case errors.Is(err, store.ErrConflict):
		// Someone wrote while we fetched: our lease lapsed. Theirs wins;
		// if our token was the later one, theirs will fail and a caller's
		// report brings the next refresh.
		m.log.Warn("refresh lost a write race", "credential", id, "kind", e.cred.Kind)
		return m.reload(ctx, e)
	case err != nil:
		// The token is fetched and WeChat will kill the old one: serve it
		// from memory though it is not stored; the next attempt builds on
		// it and stores it.
		m.log.Error("store write failed", "credential", id, "kind", e.cred.Kind, "err", err)
		nv, unsaved = ver, true
	}
	o := outcome{fetched: true, rec: rec, ver: nv, next: next, unsaved: unsaved}
	switch {
	case isLimited:
		o.err = limited
	case ferr != nil:
		o.err = &FetchError{ID: id, Err: ferr}
	}
	return o
}

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

// put writes rec over version ver, retrying a failing store a few times:
// a fetched token, and with it perhaps a new refresh token, must not be
// lost to a blip. A conflict is final.
func (m *Manager) put(ctx context.Context, id string, rec record, ver uint64) (uint64, error) {
	var err error
	for i := range 3 {
		var nv uint64
		if nv, err = m.cfg.Store.Put(ctx, recordKey(id), rec.encode(), ver); err == nil || errors.Is(err, store.ErrConflict) {
			return nv, err
		}
		select {
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return 0, err
		}
	}
	return 0, err
}

// adoptable reports whether the stored record already answers the need:
// its token is not base and is valid, or, for a planned refresh, a peer
// has re-planned it for later.
func (m *Manager) adoptable(rec record, base string, force bool) bool {
	now := time.Now()
	if rec.Token == "" || !rec.ExpiresAt.After(now) {
		return false
	}
	if rec.Token != base {
		return true
	}
	// A reported token, or one whose replacement began, is due whatever
	// its plan said.
	return !force && rec.RefreshAt.After(now) && !rec.Reported && rec.Fetching.IsZero()
}

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
	switch {
	case tok.Value == rec.Token:
		rec.Repeats = !e.cred.Stable
	case rec.ExpiresAt.After(now):
		rec.Repeats = false // replaced before its expiry: not a repeating source
	}
	if tok.Value != rec.Token {
		rec.Token, rec.IssuedAt = tok.Value, now
	}
	rec.ExpiresAt = now.Add(tok.ExpiresIn)
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
// so lifetimes are measured conservatively.
func (m *Manager) call(ctx context.Context, e *entry, rec *record, force bool) (wechat.Token, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.FetchTimeout)
	defer cancel()
	now := time.Now()
	var (
		tok   wechat.Token
		state string
		err   error
	)
	if ss, ok := e.cred.Source.(StatefulSource); ok {
		tok, state, err = ss.FetchState(ctx, force, rec.State)
		if err == nil && state != "" {
			rec.State = state
		}
	} else {
		tok, err = e.cred.Source.Fetch(ctx, force)
	}
	if !errors.Is(err, ErrNotCalled) {
		rec.countFetch(now, force)
	}
	return tok, now, err
}

// failed records a failed fetch in rec and returns when to try again.
func (m *Manager) failed(e *entry, rec *record, err error) time.Time {
	now := time.Now()
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
	rec, ver := e.rec, e.ver
	c := m.storeCause(e, err)
	e.mu.Unlock()
	now := time.Now()
	return outcome{rec: rec, ver: ver, cause: c, err: &StoreError{ID: e.cred.ID, Err: err},
		next: now.Add(m.plan.backoff(c.Failures, now, rec.ExpiresAt))}
}

// storeCause describes a store failure; e.mu must be held.
func (m *Manager) storeCause(e *entry, err error) *Cause {
	return &Cause{Class: causeStore, Message: err.Error(), Since: time.Now(), Failures: e.storeFailures}
}

// reload re-reads the record after losing a write race.
func (m *Manager) reload(ctx context.Context, e *entry) outcome {
	rec, ver, err := m.load(ctx, e.cred.ID)
	if err != nil {
		return m.storeFailed(e, err)
	}
	return outcome{rec: rec, ver: ver, next: m.planned(e, rec, time.Now())}
}

// load reads a credential's record; a missing one is empty.
func (m *Manager) load(ctx context.Context, id string) (record, uint64, error) {
	ent, err := m.cfg.Store.Get(ctx, recordKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return record{}, 0, nil
	}
	if err != nil {
		return record{}, 0, err
	}
	rec, err := decodeRecord(ent.Value)
	if err != nil {
		return record{}, 0, err
	}
	return rec, ent.Version, nil
}

// logRefresh writes one line per refresh that reached WeChat or failed.
// A repeated failure with the same cause is logged at debug level, so a
// long outage is logged once, not every retry.
func (m *Manager) logRefresh(e *entry, f *flight, o outcome, d time.Duration) {
	s := f.snap
	attrs := []any{"credential", e.cred.ID, "kind", e.cred.Kind, "force", f.force, "duration", d.Round(time.Millisecond)}
	c := o.cause
	if c == nil {
		c = o.rec.Cause
	}
	switch {
	case o.err == nil && !o.fetched:
		m.log.Debug("refresh adopted", append(attrs, "token", prefix(s.Token), "next", s.NextRefresh.UTC())...)
	case o.err == nil:
		m.log.Info("refresh", append(attrs, "result", "ok", "token", prefix(s.Token), "expires_at", s.ExpiresAt.UTC(), "next", s.NextRefresh.UTC())...)
	case c != nil:
		level := slog.LevelWarn
		switch {
		case c.Class == wechat.Revoked.String():
			level = slog.LevelError // an authorization is lost: say it loudly, every time
		case c.Failures > 1:
			level = slog.LevelDebug
		}
		m.log.Log(context.Background(), level, "refresh", append(attrs, "result", c.Class, "errcode", c.ErrCode,
			"err", c.Message, "failures", c.Failures, "next", o.next.UTC())...)
	default:
		m.log.Info("refresh", append(attrs, "result", "refused", "err", o.err.Error())...)
	}
}

// prefix is what logs show of a token: enough to tell two apart.
func prefix(tok string) string {
	if len(tok) <= 8 {
		return tok
	}
	return tok[:8] + "…"
}
