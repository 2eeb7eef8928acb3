package token

import (
	"context"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

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
		rec = e.rec.record()
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
	if woken {
		// What the retry waited for has come: its time is spent. Left
		// beside the intent stored below, it would hold back whoever
		// takes up a call that dies with this instance (a restart, a
		// peer) until then, and a pushed ticket is not pushed again.
		rec.RetryAt = time.Time{}
	}
	if e.cred.endsPrevious() {
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
