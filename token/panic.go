package token

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// causePanic marks a refresh that panicked (in a source, or in our code).
const causePanic = "panic"

// safeAttempt runs one attempt, turning a panic into a failure of this
// credential alone: it is logged with the credential and retried on the
// backoff, the flight completes so its waiters are answered, and every
// other credential keeps refreshing. The lease and the upstream slot are
// released by attempt's deferred calls as the panic unwinds.
func (m *Manager) safeAttempt(e *entry, base string, f *flight) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("refresh panicked", "credential", e.cred.ID, "kind", e.cred.Kind,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			o = m.panicked(e, r)
		}
	}()
	o = m.attempt(m.ctx, e, base, f)
	if so, ok := m.solo(m.ctx, e, o); ok {
		o = so
	}
	return o
}

// panicked records a refresh that panicked as a failure in the shared
// record, so the backoff belongs to the credential as any other failure's
// does. The record is read again: the attempt may have written its intent
// (Fetching) before the panic, and that intent must stay, since a call may
// have reached WeChat. If the store fails, the failure is kept in memory.
func (m *Manager) panicked(e *entry, r any) outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 5*time.Second)
	defer cancel()
	e.mu.Lock()
	rec, ver := e.rec.record(), e.ver
	e.mu.Unlock()
	stored, sver, lerr := m.load(ctx, e.cred.ID)
	if lerr == nil && sver >= ver {
		rec, ver = stored, sver
	}
	now := time.Now()
	c := &Cause{Class: causePanic, Message: fmt.Sprintf("refresh panicked: %v", r), Since: now, Failures: 1}
	if p := rec.Cause; p != nil && p.Class == causePanic {
		c.Since, c.Failures = p.Since, p.Failures+1
	}
	rec.Cause = c
	rec.RetryAt = now.Add(m.plan.backoff(c.Failures, now, rec.ExpiresAt))
	o := outcome{rec: rec, ver: ver, next: rec.RetryAt, err: fmt.Errorf("token: %s: %s", e.cred.ID, c.Message)}
	if lerr == nil {
		if nv, err := m.cfg.Store.Put(ctx, recordKey(e.cred.ID), rec.encode(), ver); err == nil {
			o.ver = nv
			return o
		}
	}
	o.cause = c // not stored: shown from memory
	return o
}
