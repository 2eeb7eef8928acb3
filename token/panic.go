package token

import (
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
