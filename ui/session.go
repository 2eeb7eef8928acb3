package ui

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"sync"
	"time"
)

// session is a signed-in admin. The admin key is kept to call the admin
// API on the admin's behalf; it never leaves this process again.
type session struct {
	name, role string
	key        string
	csrf       string
	created    time.Time
	seen       time.Time
}

// sessions holds the sessions of this process, by the SHA-256 of their
// id: a map lookup by the id itself would let the time it takes tell a
// guesser something about the ids held.
type sessions struct {
	idle, maxAge time.Duration
	max          int
	now          func() time.Time
	rand         io.Reader

	mu   sync.Mutex
	byID map[[32]byte]*session
}

// newID returns 32 random bytes in unpadded URL-safe base64.
func newID(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session for s and returns its id. Expired sessions are
// dropped first; at the bound, the least recently used one goes.
func (ss *sessions) create(s *session) (string, error) {
	id, err := newID(ss.rand)
	if err != nil {
		return "", err
	}
	if s.csrf, err = newID(ss.rand); err != nil {
		return "", err
	}
	now := ss.now()
	s.created, s.seen = now, now
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var oldest [32]byte
	var oldestSeen time.Time
	for h, o := range ss.byID {
		if ss.expired(o, now) {
			delete(ss.byID, h)
		} else if oldestSeen.IsZero() || o.seen.Before(oldestSeen) {
			oldest, oldestSeen = h, o.seen
		}
	}
	if len(ss.byID) >= ss.max {
		delete(ss.byID, oldest)
	}
	ss.byID[sha256.Sum256([]byte(id))] = s
	return id, nil
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) >= ss.idle || now.Sub(s.created) >= ss.maxAge
}

// get returns the live session of id and marks it used, or nil.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	h := sha256.Sum256([]byte(id))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[h]
	if s == nil {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.byID, h)
		return nil
	}
	s.seen = now
	return s
}

// end drops the session of id.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, sha256.Sum256([]byte(id)))
}
