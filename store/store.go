// Package store defines where wxtoken keeps what must outlive a process:
// tokens with their expiry and refresh plan, fetch counters, failure causes,
// and later tickets and refresh tokens. One contract serves the embedded
// single-file store and a shared store for several instances, so the same
// refresh code runs on one node or many.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors every implementation returns, so callers can use
// errors.Is whatever the backend.
var (
	// ErrNotFound: no value is stored under the key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a conditional write lost, because the stored version
	// is not the one the writer read. The writer must re-read.
	ErrConflict = errors.New("store: version conflict")
	// ErrLockLost: the lease behind an operation expired or was taken.
	ErrLockLost = errors.New("store: lock lost")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store: closed")
)

// Entry is a stored value and its version. Versions start at 1 and grow by
// one with every successful write of the key; 0 means "absent".
type Entry struct {
	Value   []byte
	Version uint64
}

// KeyEntry is a key and its entry, as Load returns them.
type KeyEntry struct {
	Key string
	Entry
}

// Store is a small versioned key-value store with named locks.
//
// Contract, checked by storetest.Run for every implementation:
//   - All methods are safe for concurrent use, by goroutines of one process
//     and, for shared backends, by several processes.
//   - Every method honours ctx: it returns ctx.Err() (wrapped) once ctx is
//     done, without having partly applied a write.
//   - Get of an absent key returns ErrNotFound.
//   - Put is a compare-and-swap on the version: it stores value only if the
//     key's current version equals expect (0: the key must be absent) and
//     returns the new version; otherwise it returns ErrConflict and changes
//     nothing. This is the fence that keeps a slow writer from overwriting
//     a newer value it never read.
//   - A value returned by Get or List is the caller's to keep; a value
//     passed to Put may be reused by the caller after Put returns.
//   - Put durably stores the value before returning: a crash after Put
//     returns does not lose it.
//   - List returns the keys with the given prefix, sorted.
//   - Load returns the keys with the given prefix and their entries,
//     sorted by key: what List and a Get of each key would, in one
//     pass over the store. Each entry is one Get would have returned at
//     some moment during the call; a key deleted meanwhile may be left out.
//   - Keys are non-empty strings of at most 512 bytes; values at most 1 MiB.
//   - Watch reports writes as the Watcher doc says; storetest.RunShared
//     checks, for shared backends, that it reports a peer's writes too.
//   - Claim and Unclaim behave as the Claimer doc says.
//
// The Locker half lets exactly one refresher work on a credential at a
// time across everything that shares the store; the Watcher half lets the
// others learn of its result without polling for it; the Claimer half
// lets each of them refuse what any of them has already accepted.
type Store interface {
	Get(ctx context.Context, key string) (Entry, error)
	Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error)
	Delete(ctx context.Context, key string, expect uint64) error
	List(ctx context.Context, prefix string) ([]string, error)
	Load(ctx context.Context, prefix string) ([]KeyEntry, error)
	Locker
	Watcher
	Claimer
	// Close releases the store's resources and ends every Watch. Calls
	// after Close return ErrClosed.
	Close() error
}

// Watcher is implemented by stores that report changes, so instances
// sharing a store can serve a new token as soon as a peer stores it.
type Watcher interface {
	// Watch delivers the key of every successful Put or Delete under prefix, by anyone
	// sharing the store, made after Watch returns, until ctx is done; then the channel is closed.
	// Delivery is best effort: when notifications may have been lost (a slow reader, a lost
	// connection), Watch sends "" meaning "anything may have changed, re-read"; readers
	// therefore also re-read periodically.
	//
	// Closing the store closes the channel too. A reader that stops
	// reading never blocks a writer: it gets "" once it reads again.
	Watch(ctx context.Context, prefix string) (<-chan string, error)
}

// Claimer records keys that may be used once within a time window, such
// as the signatures of WeChat pushes already accepted, so that a replay is
// refused by every instance sharing the store, and after a restart.
type Claimer interface {
	// Claim atomically records key for ttl, if it is not recorded already:
	// it reports true when this call recorded it, and false, changing
	// nothing, while an earlier claim of key has not expired. Of
	// concurrent Claims of one key, by anyone sharing the store, exactly
	// one reports true. A claim reported true is stored as durably as a
	// Put. Keys have the limits of Check; a ttl under a millisecond is
	// ErrInvalid. Claims are kept apart from values: Get, List, Delete and
	// Watch never see them, and a claim's key may also name a value.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Unclaim drops key's claim, so that work the claim guarded, having
	// failed, can be claimed and done again. Dropping a key that is not
	// claimed is not an error.
	Unclaim(ctx context.Context, key string) error
}

// Locker hands out named, time-limited leases.
//
// Lock blocks until it holds the lease on name, or ctx is done. A lease
// lasts ttl unless extended: a holder that dies or stalls loses it, so a
// holder must finish its work well within ttl, or Extend, and must treat
// ErrLockLost as "stop, someone else may be working". Leases on different
// names are independent.
type Locker interface {
	Lock(ctx context.Context, name string, ttl time.Duration) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Extend pushes the expiry to ttl from now, only while the lease is
	// still held; otherwise it returns ErrLockLost.
	Extend(ctx context.Context, ttl time.Duration) error
	// Unlock releases the lease if it is still held; releasing a lost
	// lease is not an error and never releases someone else's.
	Unlock(ctx context.Context) error
}

// Limits on keys and values, the same for every backend. A backend keeps
// values up to MaxValueLen+Envelope bytes, so that a wrapper framing each
// value (package sealed adds 36 bytes) still takes one of MaxValueLen.
const (
	MaxKeyLen   = 512
	MaxValueLen = 1 << 20
	Envelope    = 64
)

// ErrInvalid reports a key or value outside the limits above.
var ErrInvalid = errors.New("store: invalid key or value")

// Check validates a key and value against the limits. Implementations
// call it first so that all backends refuse the same input.
func Check(key string, value []byte) error {
	if key == "" || len(key) > MaxKeyLen || len(value) > MaxValueLen {
		return ErrInvalid
	}
	return nil
}

// CheckStored is Check for a backend, which also keeps a wrapper's
// Envelope.
func CheckStored(key string, value []byte) error {
	if key == "" || len(key) > MaxKeyLen || len(value) > MaxValueLen+Envelope {
		return ErrInvalid
	}
	return nil
}

// CheckClaim validates a claim's key and ttl, as Check does a value's.
func CheckClaim(key string, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: claim ttl %v is under a millisecond", ErrInvalid, ttl)
	}
	return Check(key, nil)
}
