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
// to several platforms. Restore moves each record it finds under an id
// its owner no longer gives the credential, with the records of the
// credential's children (whose ids extend their parent's), so that the
// refresh token and the tokens being served come across and no fetch is
// made for the move.

// migrate moves the record stored under from (rec, at version ver) to
// c.ID, and returns the record then stored under c.ID and its version.
// The children move first and the parent last, so that a crash part way
// leaves the old parent record for the next start to find; a record
// already stored under the new id (moved by a peer, or by a start that
// crashed before it deleted the old one) is kept as it is.
func (m *Manager) migrate(ctx context.Context, from string, c Credential, rec record, ver uint64) (record, uint64, error) {
	for _, k := range c.Children {
		if suffix, ok := strings.CutPrefix(k.ID, c.ID); ok {
			if err := m.move(ctx, from+suffix, k.ID); err != nil {
				return record{}, 0, err
			}
		}
	}
	nv, err := m.cfg.Store.Put(ctx, recordKey(c.ID), rec.encode(), 0)
	if errors.Is(err, store.ErrConflict) {
		rec, nv, err = m.load(ctx, c.ID)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("token: move %s to %s: %w", from, c.ID, err)
	}
	if err := m.drop(ctx, from, ver); err != nil {
		return record{}, 0, err
	}
	m.log.Info("credential moved to its namespaced id", "from", from, "credential", c.ID)
	return rec, nv, nil
}

// move moves the record stored under from, if any, to to, unless one is
// stored there already.
func (m *Manager) move(ctx context.Context, from, to string) error {
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
	return m.drop(ctx, from, ent.Version)
}

// drop deletes the old record of a moved credential. One written since it
// was read (by an instance still holding it under its old id) is left for
// the next start to move again.
func (m *Manager) drop(ctx context.Context, from string, ver uint64) error {
	err := m.cfg.Store.Delete(ctx, recordKey(from), ver)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("token: delete %s after moving it: %w", from, err)
	}
	return nil
}
