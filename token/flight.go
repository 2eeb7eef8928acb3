package token

import (
	"context"
	"time"
)

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
			if e.removed {
				e.mu.Unlock()
				return nil, 0, ErrUnknown
			}
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

// fly runs one flight and publishes its outcome.
func (m *Manager) fly(e *entry, f *flight, base string) {
	defer m.wg.Done()
	start := time.Now()
	o := m.safeAttempt(e, base, f)

	e.mu.Lock()
	if e.wakeAfterFlight {
		// What the credential waited for (its parent's new token, a
		// pushed ticket) arrived during this flight.
		e.wakeAfterFlight, e.awaitsParent, e.woken = false, false, true
		if !o.next.IsZero() {
			o.next = time.Now()
		}
	}
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
	// Counted before the waiters are released, so that a caller that saw
	// the refresh finish also sees it counted.
	d := time.Since(start)
	m.observe(e, o, d)
	close(f.done)

	m.logRefresh(e, f, o, d)
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
	e.keep(rec, ver)
	prev := e.snap.Load()
	snap := m.snapshot(e, rec, next, cause)
	e.snap.Store(snap)
	if now := time.Now(); snap.Valid(now) && (snap.Token != prev.Token || !prev.Valid(now)) {
		m.wakeChildren(e)
	}
	if snap.Revoked != prev.Revoked {
		m.revokeChildren(e)
	}
	if fns := m.onChange.Load(); fns != nil && (snap.Token != prev.Token || snap.Revoked != prev.Revoked || snap.ServeUntil.Before(prev.ServeUntil)) {
		for _, fn := range *fns {
			fn(snap)
		}
	}
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
	if m.ctx.Err() == nil && !rec.Revoked && !e.removed {
		m.wakeAt(e, next)
	} else {
		m.unwake(e)
	}
}

// keep holds rec, at store version ver, as e's record; e.mu must be held
// or e not yet published.
func (e *entry) keep(rec record, ver uint64) {
	e.rec, e.ver = hold(rec), ver
	if !e.unsaved && !soloSafe(e) {
		// The durable state (an authorizer's refresh token) is read
		// from the store, under the lease, by every attempt that uses
		// it; memory needs it only for a fetch the store did not take,
		// and for a fetch made without the store (solo).
		e.rec.State = ""
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
