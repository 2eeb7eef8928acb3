package token

import (
	"context"
	"time"
)

// Remove stops managing the credential and the credentials derived from
// it: they are no longer refreshed or served (ErrUnknown), and a refresh
// under way ends without planning another. Their stored records are kept,
// so a credential added again with the same id starts from its token, and
// from its fetch counts, rather than spending a fetch. It is how a
// credential added at run time is disabled, removed or replaced with new
// settings (Remove, then Add).
func (m *Manager) Remove(id string) error {
	e, err := m.entry(id)
	if err != nil {
		return err
	}
	for _, k := range m.kidsOf(e) {
		m.drop(k)
	}
	m.drop(e)
	m.kinsMu.Lock()
	delete(m.kids, e)
	if p := e.parent; p != nil {
		kids := m.kids[p]
		for i, k := range kids {
			if k == e {
				m.kids[p] = append(kids[:i:i], kids[i+1:]...)
				break
			}
		}
	}
	m.kinsMu.Unlock()
	return nil
}

// drop takes one entry out of the index and the refresh plan.
func (m *Manager) drop(e *entry) {
	e.mu.Lock()
	e.removed = true
	e.mu.Unlock()
	m.unwake(e)
	if m.entries.CompareAndDelete(e.cred.ID, e) {
		m.ids.changed()
	}
}

// Unblock lifts what holds the credential's refreshes back, a block
// after a configuration error or an exhausted daily quota, and a shared
// retry time, and plans a refresh now: for an operator who has fixed the
// cause upstream (re-enabled the account, cleared the quota) and will not
// wait for the block to end.
func (m *Manager) Unblock(ctx context.Context, id string) (*Snapshot, error) {
	e, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	err = m.update(ctx, e, func(rec *record) error {
		rec.BlockedUntil, rec.RetryAt, rec.Cause = time.Time{}, time.Time{}, nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.Wake(e.cred.ID)
	return e.snap.Load(), nil
}
