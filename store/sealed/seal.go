package sealed

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// magic starts every sealed value: a zero byte, which no plain value the
// store holds (JSON, text) begins with, "WX" and the format version.
var magic = [4]byte{0, 'W', 'X', 1}

const (
	headerLen = len(magic) + 4 // magic, key id
	nonceLen  = 12
	tagLen    = 16
	// Overhead is what sealing adds to a value.
	Overhead = headerLen + nonceLen + tagLen
)

// Errors of values that do not open. Their messages name the store key
// and key ids, never a key or a value.
var (
	// ErrUnknownKey: the value is sealed under a key the keyring lacks.
	ErrUnknownKey = errors.New("sealed: wrong key")
	// ErrAuth: the value does not authenticate under the key its header
	// names: it was altered, or copied from another store key.
	ErrAuth = errors.New("sealed: value does not authenticate")
	// ErrPlain: a plain value in a store whose values have all been
	// sealed; only tampering puts one there.
	ErrPlain = errors.New("sealed: plain value in a sealed store")
)

// isSealed reports whether raw carries the sealed header.
func isSealed(raw []byte) bool {
	return len(raw) >= len(magic) && [4]byte(raw[:len(magic)]) == magic
}

// sealedID is the key id in a sealed value's header; ok is false for a
// value too short to hold one.
func sealedID(raw []byte) (id [4]byte, ok bool) {
	if len(raw) < headerLen {
		return id, false
	}
	return [4]byte(raw[len(magic):headerLen]), true
}

// additional is the data authenticated besides the ciphertext: the header
// and the store key, so that a value moved to another key fails to open.
func additional(header []byte, storeKey string) []byte {
	ad := make([]byte, 0, len(header)+len(storeKey))
	return append(append(ad, header...), storeKey...)
}

// seal encrypts value for storeKey under k.
func (k *key) seal(storeKey string, value []byte) []byte {
	out := make([]byte, headerLen+nonceLen, Overhead+len(value))
	copy(out, magic[:])
	copy(out[len(magic):], k.id[:])
	nonce := out[headerLen : headerLen+nonceLen]
	rand.Read(nonce) // never fails: see crypto/rand.Read
	return k.aead.Seal(out, nonce, value, additional(out[:headerLen], storeKey))
}

// open decrypts raw, a sealed value stored under storeKey. With inPlace
// the value is decrypted over raw's ciphertext, saving an allocation per
// value of a large Load: raw is then lost, whatever the outcome.
func (r *Keyring) open(storeKey string, raw []byte, inPlace bool) ([]byte, error) {
	id, ok := sealedID(raw)
	if !ok || len(raw) < Overhead {
		return nil, fmt.Errorf("%w: %q is cut short", ErrAuth, storeKey)
	}
	k := r.find(id)
	if k == nil {
		return nil, fmt.Errorf("%w: %q is sealed under key %s and the keys given are %v", ErrUnknownKey, storeKey, idString(id), r.IDs())
	}
	nonce, ct := raw[headerLen:headerLen+nonceLen], raw[headerLen+nonceLen:]
	var dst []byte
	if inPlace {
		dst = ct[:0] // cipher.AEAD allows dst to overlap the ciphertext exactly
	}
	plain, err := k.aead.Open(dst, nonce, ct, additional(raw[:headerLen], storeKey))
	if err != nil {
		return nil, fmt.Errorf("%w: %q under key %s: altered, or copied from another key", ErrAuth, storeKey, idString(id))
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}
