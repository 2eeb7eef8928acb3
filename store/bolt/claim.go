package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/wxtoken/wxtoken/store"
)

// Claims live in a bucket of their own, apart from values: each key maps
// to its expiry, 8 bytes of big-endian Unix nanoseconds. An expired claim
// counts as absent when read, and expired claims are deleted now and then
// by a later Claim, so that the bucket holds about one window's worth.
var claimBucket = []byte("claims")

// pruneEvery is how often Claim deletes expired claims.
const pruneEvery = time.Minute

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := store.CheckClaim(key, ttl); err != nil {
		return false, err
	}
	if err := ready(ctx, key, nil); err != nil {
		return false, err
	}
	claimed := false
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(claimBucket)
		now := time.Now()
		// Write transactions run one at a time: lastPrune needs no lock.
		if now.Sub(s.lastPrune) >= pruneEvery {
			s.lastPrune = now
			if err := prune(b, now); err != nil {
				return err
			}
		}
		if v := b.Get([]byte(key)); v != nil && now.Before(expiry(v)) {
			return nil
		}
		claimed = true
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(now.Add(ttl).UnixNano()))
		return b.Put([]byte(key), v[:])
	})
	if err != nil {
		return false, wrap(err)
	}
	return claimed, nil
}

// Unclaim implements store.Store.
func (s *Store) Unclaim(ctx context.Context, key string) error {
	if err := ready(ctx, key, nil); err != nil {
		return err
	}
	return wrap(s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(claimBucket).Delete([]byte(key))
	}))
}

// expiry decodes a claim's value; a malformed one has expired.
func expiry(v []byte) time.Time {
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

// prune deletes the claims expired at now. Keys are collected first: a
// cursor that deletes as it goes may skip the entry after each deletion.
func prune(b *bbolt.Bucket, now time.Time) error {
	var old [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if !now.Before(expiry(v)) {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
