package server

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Client is a business server allowed to call the API.
type Client struct {
	// Name identifies the client in logs and the audit trail.
	Name string
	// KeyHash is the SHA-256 of its bearer key; the key itself is never
	// kept.
	KeyHash [32]byte
	// Allow lists the credential ids it may see; "*" allows all.
	Allow []string
	// Import lists the third-party platforms it may import authorizers
	// into. Allow does not imply it, not even "*": an import writes
	// refresh tokens, the one thing WeChat cannot give back.
	Import []string
	// Until, if set, is when the key stops working: a rotated key's end
	// of grace.
	Until time.Time
}

type client struct {
	name    string
	all     bool
	allow   map[string]bool
	imports map[string]bool
	until   time.Time
	obs     atomic.Pointer[observed] // with an Observer
}

// allowed reports whether the client may use credential id, owned by the
// component owner ("" for configured credentials): an authorizer, whose
// id is "{owner}/{appid}", when allowed that id or "{owner}/*".
func (c *client) allowed(id, owner string) bool {
	return c.all || c.allow[id] || (owner != "" && c.allow[owner+"/*"])
}

// clients indexes clients by key hash. Looking a key up by its hash is not
// a timing leak worth guarding: the hash of a guess reveals nothing about
// the hashes of real keys.
type clients map[[32]byte]*client

func newClients(list []Client) clients {
	cs := make(clients, len(list))
	for _, c := range list {
		cl := &client{name: c.Name, allow: map[string]bool{}, imports: map[string]bool{}, until: c.Until}
		for _, id := range c.Allow {
			if id == "*" {
				cl.all = true
			}
			cl.allow[id] = true
		}
		for _, id := range c.Import {
			cl.imports[id] = true
		}
		cs[c.KeyHash] = cl
	}
	return cs
}

// authenticate returns the client whose key the request bears.
func (cs clients) authenticate(r *http.Request) (*client, error) {
	// Header.Get, without canonicalizing a key that is canonical already.
	var h string
	if v := r.Header["Authorization"]; len(v) > 0 {
		h = v[0]
	}
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		return nil, errNoKey
	}
	c := cs[sha256.Sum256([]byte(key))]
	if c == nil || (!c.until.IsZero() && time.Now().After(c.until)) {
		return nil, errBadKey
	}
	return c, nil
}

// clientSet is the clients in force, replaced whole when clients are
// added, changed or removed at run time (SetClients): a request reads one
// set, never a set half changed.
type clientSet struct{ p atomic.Pointer[clients] }

func newClientSet(list []Client) *clientSet {
	cs := &clientSet{}
	cs.set(list)
	return cs
}

func (cs *clientSet) set(list []Client) {
	c := newClients(list)
	cs.p.Store(&c)
}

func (cs *clientSet) authenticate(r *http.Request) (*client, error) {
	return (*cs.p.Load()).authenticate(r)
}
