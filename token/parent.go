package token

import (
	"errors"
	"fmt"
	"time"
)

// Derived credentials. A credential with a Parent is fetched with the
// parent's current token (a JS-SDK ticket with its account's access token,
// an authorizer's token with its platform's component token). Its source
// is handed that token as an input and never reaches back into the
// Manager; the Manager owns the relation:
//
//   - a child is not called while its parent has no valid token: it waits,
//     and is woken as soon as the parent has one, not after its backoff;
//   - when WeChat refuses the parent's token inside the child's fetch
//     (40001, 40014, 42001), the parent is reported, which is deduplicated
//     and checked like a caller's report (compare-and-refresh, one flight),
//     and the child is retried as soon as the parent holds a new token.
//
// The child's attempt does not wait for the parent's refresh itself: it
// holds an upstream slot and its lease, and a parent refresh waiting for a
// slot that its children hold would never run.

// errNoParent is the cause of a child waiting for its parent's token.
var errNoParent = errors.New("token: waiting for the parent's token")

// causeParent marks a child waiting for its parent.
const causeParent = "parent"

// parentToken is the parent's token for a fetch of e starting at now.
func (m *Manager) parentToken(e *entry, now time.Time) (string, error) {
	p := e.parent
	if p == nil {
		return "", fmt.Errorf("%w (%w): parent %q is not managed", errNoParent, ErrNotCalled, e.cred.Parent)
	}
	s := p.snap.Load()
	if !s.Valid(now) {
		// Marked before the check's answer can change: a token the
		// parent gets from now on wakes e.
		m.awaitParent(e)
		if s = p.snap.Load(); s.Valid(now) {
			return s.Token, nil
		}
		return "", fmt.Errorf("%w (%w): %s has no valid token", errNoParent, ErrNotCalled, e.cred.Parent)
	}
	return s.Token, nil
}

// parentRefused handles WeChat refusing the parent's token, tok, inside
// e's fetch: the parent is reported unless its token has changed since,
// and e waits for the parent's next token.
func (m *Manager) parentRefused(e *entry, tok string, err error) error {
	p := e.parent
	if p == nil {
		return err
	}
	m.awaitParent(e)
	p.mu.Lock()
	if p.snap.Load().Token == tok && p.flight == nil {
		m.launch(p, tok, reported)
	}
	changed := p.snap.Load().Token != tok
	p.mu.Unlock()
	if changed {
		// The parent was replaced while we fetched: retry at once.
		e.mu.Lock()
		e.wakeAfterFlight = true
		e.mu.Unlock()
	}
	return fmt.Errorf("%w: WeChat refused %s's token: %w", errNoParent, e.cred.Parent, err)
}

// awaitParent marks e as waiting for its parent's next token.
func (m *Manager) awaitParent(e *entry) {
	e.mu.Lock()
	e.awaitsParent = true
	e.mu.Unlock()
}

// addChild links c with its parent, added before it, so that the parent's
// new tokens wake it and its revocation reaches it.
func (m *Manager) addChild(c *entry) {
	if c.cred.Parent == "" {
		return
	}
	p, err := m.entry(c.cred.Parent)
	if err != nil {
		return // not managed: c's fetches say so
	}
	c.mu.Lock()
	c.parent = p
	c.mu.Unlock()
	m.kinsMu.Lock()
	if m.kids == nil {
		m.kids = make(map[*entry][]*entry)
	}
	m.kids[p] = append(m.kids[p], c)
	m.kinsMu.Unlock()
}

// kidsOf returns p's children.
func (m *Manager) kidsOf(p *entry) []*entry {
	m.kinsMu.Lock()
	defer m.kinsMu.Unlock()
	return m.kids[p]
}

// parentRevoked reports whether e derives from a withdrawn authorization.
func (e *entry) parentRevoked() bool {
	return e.parent != nil && e.parent.snap.Load().Revoked
}

// revokeChildren republishes p's children when p's authorization was
// withdrawn or restored: what derives from a withdrawn authorization is
// not served, on any path that reads a snapshot. Their records are kept,
// for the authorization's return. p.mu is held; children's locks are
// taken under it.
func (m *Manager) revokeChildren(p *entry) {
	for _, c := range m.kidsOf(p) {
		c.mu.Lock()
		if c.snap.Load().Revoked != p.snap.Load().Revoked {
			m.settle(c, c.rec.record(), c.ver, c.snap.Load().NextRefresh, c.snap.Load().Cause)
		}
		c.mu.Unlock()
	}
}

// wakeChildren moves the next attempt of each child of p that waits for
// p's token to now, past its backoff. Locks are taken parent first: a
// child's lock is taken here, possibly under p's.
func (m *Manager) wakeChildren(p *entry) {
	kids := m.kidsOf(p)
	if len(kids) == 0 || !p.snap.Load().Valid(time.Now()) {
		return
	}
	for _, c := range kids {
		c.mu.Lock()
		waiting := c.awaitsParent
		if cs := c.snap.Load().Cause; cs != nil && cs.Class == causeParent {
			waiting = true // a peer's failure, adopted here
		}
		if waiting && c.flight != nil {
			c.wakeAfterFlight = true // the flight may have read the old token
		} else if waiting && !c.rec.Revoked {
			c.awaitsParent = false
			c.woken = true
			m.settle(c, c.rec.record(), c.ver, time.Now(), c.snap.Load().Cause)
		}
		c.mu.Unlock()
	}
}
