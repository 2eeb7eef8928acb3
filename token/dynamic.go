package token

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
)

// Credentials created at run time: a third-party platform's authorizers
// appear when an account owner authorizes the platform, carry a refresh
// token that must never be lost, and disappear when authorization is
// withdrawn.

// ErrOwned reports a credential id already used by another owner, or by a
// configured credential.
var ErrOwned = errors.New("token: credential id already in use")

// Seed is a token obtained outside the refresh loop (an authorization
// code exchanged for the first access token), with the durable state
// that refreshes it.
type Seed struct {
	Token wechat.Token
	State string
	// KeepLive refuses the seed with ErrLive if the store holds durable
	// state for the credential that is not revoked, so an import never
	// overwrites a live authorization, whatever this instance has heard
	// of yet: the check is made under the lease, on the stored record.
	KeepLive bool
}

// ErrLive reports a Seed with KeepLive for a credential whose stored
// authorization is live.
var ErrLive = errors.New("token: a live authorization is stored")

// Add starts managing c. With a seed, the seed's token and state are
// stored durably (replacing what was stored for c, and lifting a
// revocation) before they are served; without one, c's stored record is
// loaded as at Start. Adding an id that exists with the same owner updates
// it; another owner's id is refused with ErrOwned.
func (m *Manager) Add(ctx context.Context, c Credential, seed *Seed) error {
	if c.ID == "" || c.Source == nil {
		return errors.New("token: a credential needs an ID and a Source")
	}
	fresh := newEntry(c)
	v, loaded := m.entries.LoadOrStore(c.ID, fresh)
	e := v.(*entry)
	if loaded && e.cred.Owner != c.Owner {
		return fmt.Errorf("%w: %q belongs to %s", ErrOwned, c.ID, ownerName(e.cred.Owner))
	}
	if !loaded {
		m.ids.changed()
		m.addChild(e)
	}
	if seed == nil {
		rec, ver, err := m.load(ctx, c.ID)
		if err != nil {
			return err
		}
		if err := m.take(e, fresh, rec, ver); err != nil {
			return err
		}
		return m.addChildren(ctx, c)
	}
	err := m.update(ctx, e, func(rec *record) error {
		if rec.Owner != c.Owner && (rec.Owner != "" || rec.Token != "") {
			return fmt.Errorf("%w: %q is stored for %s", ErrOwned, c.ID, ownerName(rec.Owner))
		}
		if seed.KeepLive && rec.State != "" && !rec.Revoked {
			return ErrLive
		}
		now := time.Now()
		rec.Token, rec.IssuedAt, rec.ExpiresAt = seed.Token.Value, now, now.Add(seed.Token.ExpiresIn)
		rec.RefreshAt = m.plan.refreshAt(now, rec.IssuedAt, rec.ExpiresAt)
		rec.State, rec.Owner, rec.Kind, rec.Revoked = seed.State, c.Owner, c.Kind, false
		rec.Cause, rec.BlockedUntil, rec.RetryAt, rec.Fetching, rec.Reported = nil, time.Time{}, time.Time{}, time.Time{}, false
		return nil
	})
	if err != nil {
		m.dropIfNew(e, fresh)
		return err
	}
	return m.addChildren(ctx, c)
}

// addChildren adds c's derived credentials, loading what is stored for
// them.
func (m *Manager) addChildren(ctx context.Context, c Credential) error {
	for _, k := range c.Children {
		k.Parent = c.ID
		if err := m.Add(ctx, k, nil); err != nil {
			return fmt.Errorf("token: %s: %w", k.ID, err)
		}
	}
	return nil
}

// take publishes rec, read from the store at version ver, as the state of
// e, the entry Add found or stored (fresh), and plans its refresh as at
// Start.
func (m *Manager) take(e, fresh *entry, rec record, ver uint64) error {
	if rec.Owner != e.cred.Owner {
		m.dropIfNew(e, fresh)
		return fmt.Errorf("%w: %q is stored for %s", ErrOwned, e.cred.ID, ownerName(rec.Owner))
	}
	e.mu.Lock()
	m.settle(e, rec, ver, m.loaded(e, rec, time.Now()), nil)
	e.mu.Unlock()
	return nil
}

func (m *Manager) dropIfNew(e, fresh *entry) {
	if e == fresh {
		if m.entries.CompareAndDelete(e.cred.ID, fresh) {
			m.ids.changed()
		}
	}
}

func ownerName(owner string) string {
	if owner == "" {
		return "a configured credential"
	}
	return "component " + owner
}

// Revoke marks the credential's authorization withdrawn: its token and
// state are erased from the store, it is no longer refreshed, and Token
// answers ErrRevoked. A later Add with a seed restores it.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	e, err := m.lookup(id)
	if err != nil {
		return err
	}
	return m.update(ctx, e, func(rec *record) error {
		*rec = record{Owner: rec.Owner, Kind: rec.Kind, Revoked: true, Day: rec.Day, Fetches: rec.Fetches}
		return nil
	})
}

// update applies change to the credential's stored record under its
// lease and publishes the result.
func (m *Manager) update(ctx context.Context, e *entry, change func(*record) error) error {
	lease, err := m.cfg.Store.Lock(ctx, "lock/"+recordKey(e.cred.ID), m.cfg.LockTTL)
	if err != nil {
		return err
	}
	defer lease.Unlock(context.WithoutCancel(ctx))
	rec, ver, err := m.load(ctx, e.cred.ID)
	if err != nil {
		return err
	}
	if err := change(&rec); err != nil {
		return err
	}
	nv, err := m.put(ctx, e.cred.ID, rec, ver)
	if err != nil {
		return err
	}
	e.mu.Lock()
	m.settle(e, rec, nv, m.planned(e, rec, time.Now()), nil)
	e.mu.Unlock()
	return nil
}

// Restore adds every credential stored by owner in an earlier run, built
// by mk from its id, and returns how many. Authorizers come back this way
// after a restart, with their refresh tokens. Authorizers a peer instance
// adds later are taken up with mk too. The records are read in one pass
// over the store (Load), not one read per credential: a platform may have
// a hundred thousand authorizers, and each must be served from the moment
// the API listens.
func (m *Manager) Restore(ctx context.Context, owner string, mk func(id string) Credential) (int, error) {
	// Not beside a re-read of every record (resyncAll): run together,
	// both would decode each record and add each authorizer.
	m.bulk.Lock()
	defer m.bulk.Unlock()
	m.owners.set(owner, mk)
	ents, err := m.cfg.Store.Load(ctx, recordKey(""))
	if err != nil {
		return 0, err
	}
	// Decoding is most of the work: split it over the processors.
	var (
		n    atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, runtime.GOMAXPROCS(0))
	)
	for w, chunk := range chunks(ents, len(errs)) {
		wg.Go(func() {
			for i := range chunk {
				rec, err := decodeRecord(chunk[i].Value)
				chunk[i].Value = nil // let the store's copy go as soon as it is decoded
				if err != nil || rec.Owner != owner {
					continue
				}
				id, ver := chunk[i].Key[len(recordKey("")):], chunk[i].Version
				c := mk(id)
				if c.ID != id {
					// Stored before ids had namespaces.
					if rec, ver, errs[w] = m.migrate(ctx, id, c, rec); errs[w] != nil {
						return
					}
				}
				if errs[w] = m.addLoaded(ctx, c, rec, ver); errs[w] != nil {
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load()), errors.Join(errs...)
}

// chunks splits s into at most k runs of nearly equal length.
func chunks[T any](s []T, k int) [][]T {
	var out [][]T
	for k > 0 && len(s) > 0 {
		size := (len(s) + k - 1) / k
		out = append(out, s[:size])
		s, k = s[size:], k-1
	}
	return out
}

// addLoaded is Add without a seed for a record already read from the
// store at version ver. The credential's children are loaded one by one.
func (m *Manager) addLoaded(ctx context.Context, c Credential, rec record, ver uint64) error {
	if c.ID == "" || c.Source == nil {
		return errors.New("token: a credential needs an ID and a Source")
	}
	if rec.Owner != c.Owner {
		return fmt.Errorf("%w: %q is stored for %s", ErrOwned, c.ID, ownerName(rec.Owner))
	}
	fresh, next := m.newLoaded(c, rec, ver)
	v, loaded := m.entries.LoadOrStore(c.ID, fresh)
	e := v.(*entry)
	if e.cred.Owner != c.Owner {
		return fmt.Errorf("%w: %q belongs to %s", ErrOwned, c.ID, ownerName(e.cred.Owner))
	}
	if loaded {
		if err := m.take(e, nil, rec, ver); err != nil {
			return err
		}
		return m.addChildren(ctx, c)
	}
	m.ids.changed()
	m.addChild(e)
	e.mu.Lock()
	if e.snap.Load().Revoked != (rec.Revoked || e.parentRevoked()) {
		// The parent's authorization was withdrawn or restored since
		// the snapshot was made: publish it again, as settle does.
		m.settle(e, rec, ver, next, nil)
	} else if m.ctx.Err() == nil && !rec.Revoked {
		m.wakeAt(e, next)
	}
	e.mu.Unlock()
	return m.addChildren(ctx, c)
}

// newLoaded returns an entry for c holding rec, read from the store at
// version ver, with its snapshot made and its next refresh (returned) as
// settle would plan it: one not yet published, which needs no placeholder
// snapshot. A start restores 100,000 authorizers, and each placeholder,
// replaced at once, left a hole among the snapshots that stay: some 20
// MB the heap kept but did not use.
func (m *Manager) newLoaded(c Credential, rec record, ver uint64) (*entry, time.Time) {
	e := &entry{cred: c, wakeIdx: -1}
	if c.Parent != "" {
		if p, err := m.entry(c.Parent); err == nil {
			e.parent = p
		}
	}
	next := m.loaded(e, rec, time.Now())
	e.keep(rec, ver)
	e.snap.Store(m.snapshot(e, rec, next, rec.Cause))
	return e, next
}

// Wake moves the credential's next refresh to now if it has no valid
// token: a ticket it was waiting for has arrived. A flight under way may
// have read the store before the ticket was stored, and fail for want of
// it: it re-plans at once when it ends, rather than wait out the retry
// of a missing ticket while the ticket is there.
func (m *Manager) Wake(id string) {
	e, err := m.lookup(id)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	switch {
	case s.Valid(time.Now()) || s.Revoked:
	case e.flight != nil:
		e.wakeAfterFlight = true
	default:
		e.woken = true
		m.settle(e, e.rec.record(), e.ver, time.Now(), s.Cause)
	}
}
