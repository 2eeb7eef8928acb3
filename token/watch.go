package token

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Instances sharing a store learn of each other's refreshes from the
// store's change notifications, and re-read everything periodically in
// case a notification was lost. A record newer than the one held replaces
// it; a refresh in flight is left alone, since it reads the store itself.

// owners maps a component id to the function building its authorizers'
// credentials, so a peer's new authorizer can be taken up here too.
type owners struct {
	mu sync.Mutex
	mk map[string]func(id string) Credential
	// since is when each owner's credentials were first restored.
	since map[string]time.Time
}

func (o *owners) set(owner string, mk func(string) Credential) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mk == nil {
		o.mk = make(map[string]func(string) Credential)
		o.since = make(map[string]time.Time)
	}
	o.mk[owner] = mk
	if _, ok := o.since[owner]; !ok {
		o.since[owner] = time.Now()
	}
}

// restoredFor is how long ago owner's credentials were first restored.
func (o *owners) restoredFor(owner string) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Since(o.since[owner])
}

// any reports whether an owner is known: without one, no credential is
// created at run time.
func (o *owners) any() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.mk) > 0
}

// list returns the owners, sorted.
func (o *owners) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.mk))
	for owner := range o.mk {
		out = append(out, owner)
	}
	slices.Sort(out)
	return out
}

func (o *owners) get(owner string) func(string) Credential {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mk[owner]
}

// follow watches the store and re-reads on every change until the Manager
// closes. It runs in its own goroutine, owned by the Manager.
func (m *Manager) follow() {
	defer m.wg.Done()
	ctx := m.ctx
	resync := time.NewTicker(m.cfg.Resync)
	defer resync.Stop()
	var changes <-chan string
	for {
		if changes == nil {
			ch, err := m.cfg.Store.Watch(ctx, recordKey(""))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				m.log.Warn("store watch failed; relying on periodic re-reads", "err", err)
			} else {
				changes = ch
				m.resyncAll(ctx) // what changed while not watching
				m.retryStoreFailures()
			}
		}
		select {
		case <-ctx.Done():
			return
		case key, ok := <-changes:
			switch {
			case !ok:
				changes = nil // re-watch on the next round
				select {
				case <-ctx.Done():
					return
				case <-time.After(m.cfg.BaseBackoff):
				}
			case key == "":
				m.resyncAll(ctx)
				m.retryStoreFailures()
			default:
				m.adopt(ctx, strings.TrimPrefix(key, recordKey("")))
			}
		case <-resync.C:
			m.resyncAll(ctx)
		}
	}
}

// retryStoreFailures moves the refresh of every credential that failed on
// the store to now: the store is back (its subscription reconnected), and
// waiting out a backoff that grew during the outage would keep serving
// nothing for minutes. Peers do the same; the lease lets one fetch.
func (m *Manager) retryStoreFailures() {
	m.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		if e.storeFailures > 0 && e.flight == nil {
			m.settle(e, e.rec.record(), e.ver, time.Now(), e.snap.Load().Cause)
		}
		e.mu.Unlock()
		return true
	})
}

// resyncAll re-reads every record that changed, in one pass over the
// store, taking up authorizers a peer created. Only records newer than
// the one held (or of credentials not held, when authorizers may be taken
// up) are copied out of the store: a pass runs every Resync, and whenever
// notifications were dropped, as they are while a mass import writes
// faster than they are read; copying all 100,000 records each time was
// most of what an import allocated.
func (m *Manager) resyncAll(ctx context.Context) {
	m.bulk.Lock()
	defer m.bulk.Unlock()
	takeUp := m.owners.any()
	ents, err := store.LoadChanged(ctx, m.cfg.Store, recordKey(""), func(key string) uint64 {
		e, err := m.entry(strings.TrimPrefix(key, recordKey("")))
		if err != nil {
			if takeUp {
				return 0
			}
			return math.MaxUint64
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.ver
	})
	if err != nil {
		return // the store is down; refreshes report it
	}
	for i := range ents {
		m.adoptEntry(ctx, strings.TrimPrefix(ents[i].Key, recordKey("")), ents[i].Entry)
		ents[i].Value = nil
	}
}

// adopt takes id's stored record if it is newer than the one held.
func (m *Manager) adopt(ctx context.Context, id string) {
	if _, err := m.entry(id); errors.Is(err, ErrUnknown) {
		m.takeUp(ctx, id)
		return
	}
	ent, err := m.cfg.Store.Get(ctx, recordKey(id))
	if err != nil {
		return
	}
	m.adoptEntry(ctx, id, ent)
}

// adoptEntry takes ent, id's record read from the store, if it is newer
// than the one held. The version is compared before the record is decoded:
// most notifications are of our own writes, and a periodic re-read of
// thousands of authorizers must cost little.
func (m *Manager) adoptEntry(ctx context.Context, id string, ent store.Entry) {
	e, err := m.entry(id)
	if errors.Is(err, ErrUnknown) {
		if !m.owners.any() {
			return // only authorizers are created at run time
		}
		if rec, err := decodeRecord(ent.Value); err == nil {
			m.takeUpLoaded(id, rec, ent.Version)
		}
		return
	}
	e.mu.Lock()
	held := e.ver
	e.mu.Unlock()
	if ent.Version <= held {
		return
	}
	rec, err := decodeRecord(ent.Value)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ent.Version > e.ver && e.flight == nil && rec.Owner == e.cred.Owner {
		m.settle(e, rec, ent.Version, m.planned(e, rec, time.Now()), nil)
	}
}

// takeUp adds a credential a peer created for a known owner.
func (m *Manager) takeUp(ctx context.Context, id string) {
	rec, ver, err := m.load(ctx, id)
	if err == nil {
		m.takeUpLoaded(id, rec, ver)
	}
}

// takeUpLoaded is takeUp with id's record read already.
func (m *Manager) takeUpLoaded(id string, rec record, ver uint64) {
	if rec.Owner == "" {
		return
	}
	mk := m.owners.get(rec.Owner)
	if mk == nil {
		return
	}
	c := mk(id)
	if c.ID == id {
		m.addLoaded(m.ctx, c, rec, ver)
		return
	}
	// A record under an id from before namespaces, which Restore copied
	// to the credential's id. The old one goes once that is held here and
	// has been for a re-read period: an instance starting now reads a
	// store whose new records are older than its read, and so finds them.
	if _, err := m.entry(c.ID); err == nil && m.owners.restoredFor(rec.Owner) >= m.cfg.Resync {
		m.dropMoved(m.ctx, id, ver, c)
	}
}
