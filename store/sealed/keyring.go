package sealed

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeyLen is the length of a master key: AES-256.
const KeyLen = 32

// ErrBadKey reports a master key that is not KeyLen bytes in standard
// base64. Its messages never contain the key.
var ErrBadKey = errors.New("sealed: bad master key")

// NewKey returns a new random master key in standard base64, the form
// ParseKey reads.
func NewKey() string {
	k := make([]byte, KeyLen)
	rand.Read(k) // never fails: see crypto/rand.Read
	return base64.StdEncoding.EncodeToString(k)
}

// ParseKey decodes a master key from standard base64, padded (as
// NewKey and "openssl rand -base64 32" print it) or not, surrounding
// space ignored. The error says what is wrong without repeating the
// input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadKey)
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") {
		enc = base64.RawStdEncoding
	}
	k, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64 (as \"wxtoken keygen\" prints)", ErrBadKey)
	}
	if len(k) != KeyLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d (as \"wxtoken keygen\" prints)", ErrBadKey, len(k), KeyLen)
	}
	return k, nil
}

// key is one master key, ready to seal and open.
type key struct {
	id   [4]byte
	aead cipher.AEAD
}

// keyID names a key without revealing it: the first bytes of a hash of
// it, under a label of its own so that it is no hash used elsewhere.
func keyID(k []byte) [4]byte {
	h := sha256.New()
	h.Write([]byte("wxtoken master key id\x00"))
	h.Write(k)
	var id [4]byte
	copy(id[:], h.Sum(nil))
	return id
}

func idString(id [4]byte) string { return hex.EncodeToString(id[:]) }

func newKey(k []byte) (*key, error) {
	if len(k) != KeyLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(k), KeyLen)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &key{id: keyID(k), aead: aead}, nil
}

// Keyring is the primary key, which seals, and others that only open.
// It is safe for concurrent use.
type Keyring struct {
	primary *key
	others  []*key
}

// NewKeyring makes a keyring of raw keys. A key given twice counts once;
// two keys with the same id are refused.
func NewKeyring(primary []byte, others ...[]byte) (*Keyring, error) {
	p, err := newKey(primary)
	if err != nil {
		return nil, fmt.Errorf("primary key: %w", err)
	}
	r := &Keyring{primary: p}
	seen := map[[4]byte][]byte{p.id: primary}
	for i, o := range others {
		k, err := newKey(o)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		if prev, ok := seen[k.id]; ok {
			if bytes.Equal(prev, o) {
				continue
			}
			return nil, fmt.Errorf("%w: previous key %d has the id %s of another key; make a new one", ErrBadKey, i+1, idString(k.id))
		}
		seen[k.id] = o
		r.others = append(r.others, k)
	}
	return r, nil
}

// ParseKeyring makes a keyring of base64 keys: the primary, and others
// separated by commas (empty: none).
func ParseKeyring(primary, others string) (*Keyring, error) {
	p, err := ParseKey(primary)
	if err != nil {
		return nil, fmt.Errorf("primary key: %w", err)
	}
	var os [][]byte
	for i, s := range strings.Split(others, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		os = append(os, k)
	}
	return NewKeyring(p, os...)
}

// ParseKeyFile reads a key file: the first line that is neither empty nor
// a comment (#) is the primary key, each later one a key that opens.
// Errors name the line, never its content.
func ParseKeyFile(data []byte) (*Keyring, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the file holds no key", ErrBadKey)
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// ID is the primary key's id, as logs and errors name it.
func (r *Keyring) ID() string { return idString(r.primary.id) }

// IDs are the ids of every key, the primary first.
func (r *Keyring) IDs() []string {
	ids := []string{r.ID()}
	for _, k := range r.others {
		ids = append(ids, idString(k.id))
	}
	return ids
}

// Rotating reports whether the keyring holds keys besides the primary,
// so that values may still be sealed under one of them.
func (r *Keyring) Rotating() bool { return len(r.others) > 0 }

// find returns the key with id, nil if the keyring has none.
func (r *Keyring) find(id [4]byte) *key {
	if r.primary.id == id {
		return r.primary
	}
	for _, k := range r.others {
		if k.id == id {
			return k
		}
	}
	return nil
}
