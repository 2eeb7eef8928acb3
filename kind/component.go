package kind

import (
	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/token"
)

// Component is an Open Platform third-party platform: its component token
// is fetched with the component_verify_ticket WeChat pushes to its
// authorization-event URL, and the accounts that authorize it become
// authorizer credentials at run time (package component).
var Component = &Kind{
	Name:   component.KindComponent,
	Fields: []string{"component_appid", "token", "encoding_aes_key", "tickets", "callback"},
	Defaults: func(cr *config.Credential) {
		if cr.ID == "" {
			cr.ID = cr.ComponentAppID
		}
	},
	Validate: func(cr config.Credential, bad Bad) {
		if cr.ComponentAppID == "" {
			bad("component_appid", "required for kind component")
		} else if !appIDPattern.MatchString(cr.ComponentAppID) {
			bad("component_appid", "want wx and 16 lowercase hex digits (the platform's AppID), got %q", cr.ComponentAppID)
		}
		if cr.Token == "" {
			bad("token", "required for kind component: the message token of the platform")
		}
		if !config.ValidAESKey(cr.EncodingAESKey) {
			bad("encoding_aes_key", "want the platform's 43-character EncodingAESKey")
		}
		if cb := cr.Callback; cb != nil {
			// A platform's keys are its own fields; its callback block
			// says only where its events and its authorizers'
			// messages go.
			if cb.Token != "" || cb.EncodingAESKey != "" {
				bad("callback", "holds only forward rules for kind component: its token and encoding_aes_key are the credential's own fields")
			}
			config.ValidateForward(cb.Forward, "component", bad)
		}
	},
	Build: func(env *Env, cr config.Credential) (Built, error) {
		p := component.New(component.Config{ID: cr.ID, AppID: cr.ComponentAppID, Secret: cr.Secret,
			Tickets: authorizerTickets(env, accountTickets, cr.Tickets)}, env.Client, env.Store, env.Logger)
		return Built{Credential: p.Credential(), Platform: p, Receiver: cr.ComponentAppID,
			CallbackToken: cr.Token, AESKey: cr.EncodingAESKey}, nil
	},
	// WeChat posts tickets and authorization events, always encrypted,
	// and never verifies the URL with a GET.
	Callback:    &Callback{Encrypted: true, Authorizers: true},
	Tickets:     accountTickets,
	Authorizers: true,
	Facade:      facade.Component,
}

func init() { Default.Register(Component) }

// authorizerTickets makes the tickets of have that a platform's
// configuration enables for each of its authorizers.
func authorizerTickets(env *Env, have []*Ticket, types []string) func(id, appid string) []token.Credential {
	ts := ticketsOf(have, types)
	if len(ts) == 0 {
		return nil
	}
	return func(id, appid string) []token.Credential { return children(env, id, appid, ts) }
}
