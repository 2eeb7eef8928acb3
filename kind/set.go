package kind

import (
	"fmt"
	"strings"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/token"
)

// Set is a configuration's credentials, built by their kinds: what the
// token manager keeps fresh, the platforms, the callbacks the server
// answers and the JS-SDK of each credential.
type Set struct {
	// Credentials are the token manager's, children included.
	Credentials []token.Credential
	// Platforms are the third-party platforms, by credential id.
	Platforms map[string]*component.Platform
	// Callbacks are the endpoints WeChat calls.
	Callbacks []server.Callback
	// Facade are the credentials the WeChat-compatible facade names by
	// appid.
	Facade []facade.Credential

	jssdk map[string]*server.JSSDK
	// authorizers are the tickets each platform enables for its
	// authorizers, by platform id.
	authorizers map[string][]*Ticket
}

// Build builds every credential of list with its kind.
func (r *Registry) Build(env *Env, list []config.Credential) (*Set, error) {
	s := &Set{Platforms: map[string]*component.Platform{}, jssdk: map[string]*server.JSSDK{},
		authorizers: map[string][]*Ticket{}}
	for _, cr := range list {
		k, ok := r.Lookup(cr.Kind)
		if !ok {
			return nil, fmt.Errorf("credential %s: unknown kind %q", cr.ID, cr.Kind)
		}
		b, err := k.Build(env, cr)
		if err != nil {
			return nil, fmt.Errorf("credential %s: %w", cr.ID, err)
		}
		s.Credentials = append(s.Credentials, b.Credential)
		if k.Facade != "" {
			s.Facade = append(s.Facade, facade.Credential{ID: cr.ID, AppID: b.Receiver, Family: k.Facade, Secret: cr.Secret})
		}
		ts := ticketsOf(k.Tickets, cr.Tickets)
		if b.Platform != nil {
			s.Platforms[cr.ID] = b.Platform
			s.authorizers[cr.ID] = ts
		} else if len(ts) > 0 {
			s.jssdk[cr.ID] = jssdkOf(cr.ID, b.Receiver, cr.AgentID, ts)
		}
		if k.Callback != nil && b.CallbackToken != "" {
			cb := server.Callback{Kind: k.Name, ID: cr.ID, Token: b.CallbackToken}
			if p := b.Platform; p != nil {
				cb.Handler = p
			}
			if b.AESKey != "" {
				c, err := callback.NewCrypter(b.CallbackToken, b.AESKey, b.Receiver)
				if err != nil {
					return nil, fmt.Errorf("credential %s: %w", cr.ID, err)
				}
				cb.Crypter = c
			}
			s.Callbacks = append(s.Callbacks, cb)
		}
	}
	return s, nil
}

// CallbackModes are the callback routes of the registry's kinds.
func (r *Registry) CallbackModes() []server.CallbackMode {
	var out []server.CallbackMode
	for _, k := range r.All() {
		if k.Callback != nil {
			out = append(out, server.CallbackMode{Kind: k.Name, Verify: k.Callback.Verify, Encrypted: k.Callback.Encrypted,
				Authorizers: k.Callback.Authorizers, VerifyAnyReceiver: k.Callback.VerifyAnyReceiver})
		}
	}
	return out
}

// JSSDK returns the server's lookup of a credential's tickets: configured
// credentials' from their configuration, an authorizer's from its
// platform's, found through owner (the platform that owns an id, "" if
// none).
func (s *Set) JSSDK(owner func(id string) string) func(id string) *server.JSSDK {
	return func(id string) *server.JSSDK {
		if j := s.jssdk[id]; j != nil {
			return j
		}
		if p := owner(id); len(s.authorizers[p]) > 0 {
			// wx.config carries the authorizer's own appid: its id
			// within the platform's namespace.
			return jssdkOf(id, strings.TrimPrefix(id, p+"/"), 0, s.authorizers[p])
		}
		return nil
	}
}

// jssdkOf describes the tickets ts of credential id.
func jssdkOf(id, appID string, agentID int64, ts []*Ticket) *server.JSSDK {
	j := &server.JSSDK{AppID: appID, AgentID: agentID, Tickets: map[string]string{}}
	for _, t := range ts {
		j.Tickets[t.Type] = TicketID(id, t.Type)
		switch t.Signs {
		case "config":
			j.Config = t.Type
		case "agentConfig":
			j.AgentConfig = t.Type
		}
	}
	return j
}
