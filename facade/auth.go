package facade

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// client is a Client ready for lookups.
type client struct {
	name  string
	sdk   string
	all   bool
	allow map[string]bool
	until time.Time
}

// allowed reports whether the client may use credential id, owned by the
// platform owner ("" for configured credentials): the /v1 API's rule.
func (c *client) allowed(id, owner string) bool {
	return c.all || c.allow[id] || (owner != "" && c.allow[owner+"/*"])
}

// clients indexes clients by key hash.
type clients map[[32]byte]*client

func newClients(list []Client) (clients, error) {
	cs := make(clients, len(list))
	for _, c := range list {
		if err := CheckSDK(c.SDK); err != nil {
			return nil, fmt.Errorf("facade: client %s: %w", c.Name, err)
		}
		cl := &client{name: c.Name, sdk: c.SDK, allow: map[string]bool{}, until: c.Until}
		for _, id := range c.Allow {
			cl.all = cl.all || id == "*"
			cl.allow[id] = true
		}
		cs[c.KeyHash] = cl
	}
	return cs, nil
}

// get returns the client whose key is key, nil if none is, or if its key
// is past its grace.
func (cs clients) get(key string) *client {
	c := cs[sha256.Sum256([]byte(key))]
	if c == nil || (!c.until.IsZero() && time.Now().After(c.until)) {
		return nil
	}
	return c
}

// maxSecret bounds the secret field looked at: a key, a dot and a
// credential id.
const maxSecret = 512

// How a secret names a credential. The SDK sends the client's key where
// WeChat takes the AppSecret. An appid normally names one credential;
// when it names several that the client may use (a WeCom corp has one
// credential per application, each with its own secret, so corpid and key
// alone cannot tell which application is meant), the secret names the
// credential too: "<key>.<credential id>". A request that leaves the
// choice open is refused, naming the choices, rather than answered with
// an arbitrary one.

// resolve finds the client and credential of a token request that names
// appid (or corpid) and sends secret, at an endpoint of family fam.
// badKey is the errcode of a wrong key: 40125 at WeChat's endpoints,
// 40001 at WeCom's, as each host answers a wrong secret.
func (f *Facade) resolve(fam Family, appid, secret string, badKey int) (*client, Credential, *Error) {
	switch {
	case appid == "" && fam == WeCom:
		return nil, Credential{}, &Error{Code: CodeAppIDMissing, Msg: "corpid missing"}
	case appid == "":
		return nil, Credential{}, &Error{Code: CodeAppIDMissing, Msg: "appid missing"}
	case secret == "" && fam == WeCom:
		return nil, Credential{}, &Error{Code: CodeSecretMissing, Msg: "corpsecret missing"}
	case secret == "":
		return nil, Credential{}, &Error{Code: CodeSecretMissing, Msg: "appsecret missing"}
	}
	var cands []Credential
	for _, c := range f.idx.Load().byAppID[appid] {
		if c.Family == fam {
			cands = append(cands, c)
		}
	}
	c, named := f.authenticate(secret, cands)
	if c == nil {
		// Checked before the appid, so that no one without a key learns
		// which appids are served here.
		return nil, Credential{}, &Error{Code: badKey, Msg: "invalid appsecret: not a wxtoken client key"}
	}
	var ok []Credential
	for _, cr := range cands {
		if c.allowed(cr.ID, "") && (named == "" || cr.ID == named) {
			ok = append(ok, cr)
		}
	}
	switch len(ok) {
	case 0:
		// Unknown, or not this client's: the same answer, as the /v1 API
		// gives 403 for both.
		return nil, Credential{}, &Error{Code: CodeInvalidAppID, Msg: "invalid appid: not one this wxtoken client key may use"}
	case 1:
		return c, ok[0], nil
	}
	ids := make([]string, len(ok))
	for i, cr := range ok {
		ids[i] = cr.ID
	}
	return nil, Credential{}, &Error{Code: badKey, Msg: fmt.Sprintf(
		"invalid appsecret: this wxtoken key may use several credentials of %s (%s); send <key>.<credential id> as the secret to name one",
		appid, strings.Join(ids, ", "))}
}

// authenticate returns the client whose key secret is, or is followed by
// "." and the id of one of cands (named). Credential ids may hold dots,
// so every split is tried.
func (f *Facade) authenticate(secret string, cands []Credential) (c *client, named string) {
	if len(secret) > maxSecret {
		return nil, ""
	}
	cs := f.idx.Load().clients
	if c := cs.get(secret); c != nil {
		return c, ""
	}
	for _, cr := range cands {
		key, ok := strings.CutSuffix(secret, "."+cr.ID)
		if !ok {
			continue
		}
		if c := cs.get(key); c != nil {
			return c, cr.ID
		}
	}
	return nil, ""
}
