// Package sealed keeps a store's values encrypted at rest: a store.Store
// wrapper that seals every value on Put and opens it on Get and Load with
// AES-256-GCM under a master key, so that a copy of the bolt file or a
// dump of Redis reveals no AppSecret-derived token, refresh token or
// ticket without the key.
//
// # Format
//
// A sealed value is
//
//	magic (4 bytes) | key id (4 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// 36 bytes more than the value (store.Envelope leaves room for them). The
// nonce is random for every write. The magic, the key id and the store
// key are the additional data, so a value copied under another key, or
// its header altered, fails to open rather than opening as garbage. The
// key id is the first four bytes of a hash of the key: it names the key a
// value was sealed under (in errors, too) without revealing it.
//
// AES-GCM with random nonces is good for 2^32 writes under one key (NIST
// SP 800-38D); at a write per credential every hour or two that is years
// for 100,000 credentials, and a rekey starts the count again.
//
// # Keys and rotation
//
// A Keyring holds the primary key, which seals, and any number of others
// that only open. Rotating is: give every instance the new key as one
// that opens; make it the primary, the old one opening; let the store be
// re-sealed (Reseal, run by the server in the background or by
// "wxtoken rekey"); drop the old key. Re-sealing rewrites each value in
// place with store.Rewriter, keeping its version, so a refresher writing
// at the same moment is never turned away.
//
// # Start-up
//
// A record under CanaryKey says the store is sealed, under which key, and
// whether every plain value has been sealed yet. Open refuses a keyring
// that does not open it, naming the key ids, and CheckNoKey refuses to
// run a store that is sealed without a key. A plain store opened with a
// key is migrated: its values are readable as they are until the first
// complete pass has sealed them all; after that a plain value is an error,
// since only tampering can have put it there.
package sealed
