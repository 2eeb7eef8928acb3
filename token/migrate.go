package token

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wxtoken/wxtoken/store"
)

// Ids gained namespaces: an authorizer once stored under its bare appid
// is held as "{platform}/{appid}", so that one account can be authorized
// to several platforms. Restore copies each record it finds under an id
// its owner no longer gives the credential to the credential's id, with
// the records of the credential's children (whose ids extend their
// parent's), so that the refresh token and the tokens being served come
// across and no fetch is made for the move. The old records are deleted
// later, by the periodic re-read (dropMoved), not at the move: instances
// that start together each read the store in one pass that is not a
// snapshot (Redis), and one that read an old key's name before a peer
// deleted it would find neither the old record nor the new one.

// migrate copies the record stored under from (rec, at version ver) to
// c.ID, and returns the record then stored under c.ID and its version.
// The children are copied first and the parent last; a record already
// stored under a new id (copied by a peer, or by an earlier start) is
// kept as it is.
func (m *Manager) migrate(ctx context.Context, from string, c Credential, rec record) (record, uint64, error) {
	for _, k := range c.Children {
		if suffix, ok := strings.CutPrefix(k.ID, c.ID); ok {
			if err := m.copyRecord(ctx, from+suffix, k.ID); err != nil {
				return record{}, 0, err
			}
		}
	}
	nv, err := m.cfg.Store.Put(ctx, recordKey(c.ID), rec.encode(), 0)
	if errors.Is(err, store.ErrConflict) {
		rec, nv, err = m.load(ctx, c.ID)
	} else if err == nil {
		m.log.Info("credential moved to its namespaced id", "from", from, "credential", c.ID)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("token: move %s to %s: %w", from, c.ID, err)
	}
	return rec, nv, nil
}

// copyRecord copies the record stored under from, if any, to to, unless
// one is stored there already.
func (m *Manager) copyRecord(ctx context.Context, from, to string) error {
	ent, err := m.cfg.Store.Get(ctx, recordKey(from))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err == nil {
		_, err = m.cfg.Store.Put(ctx, recordKey(to), ent.Value, 0)
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("token: move %s to %s: %w", from, to, err)
	}
	return nil
}

// dropMoved deletes the old records of c, stored under from (at version
// ver) before ids had namespaces, once c is held under its own id. A
// record written since it was read (by an instance still holding it under
// its old id) is left for the next pass.
func (m *Manager) dropMoved(ctx context.Context, from string, ver uint64, c Credential) {
	drop := func(key string, ver uint64) {
		err := m.cfg.Store.Delete(ctx, recordKey(key), ver)
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			m.log.Warn("old record of a moved credential not deleted", "key", key, "credential", c.ID, "err", err)
		}
	}
	for _, k := range c.Children {
		if suffix, ok := strings.CutPrefix(k.ID, c.ID); ok {
			if ent, err := m.cfg.Store.Get(ctx, recordKey(from+suffix)); err == nil {
				drop(from+suffix, ent.Version)
			}
		}
	}
	drop(from, ver)
}
