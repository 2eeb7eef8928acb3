package kind

import (
	"context"
	"regexp"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// WeCom is one WeCom (企业微信) application: a corpid and the app's
// secret, fetched from cgi-bin/gettoken. A corp has one token per app
// secret, so its id is chosen, not derived.
var WeCom = &Kind{
	Name:   "wecom",
	Fields: []string{"corpid", "callback", "tickets", "agentid"},
	Validate: func(cr config.Credential, bad Bad) {
		if cr.CorpID == "" {
			bad("corpid", "required for kind wecom")
		} else if !corpIDPattern.MatchString(cr.CorpID) {
			bad("corpid", "want ww (or, for an old enterprise account, wx) and 16 lowercase hex digits (the CorpID), got %q", cr.CorpID)
		}
		if cr.Callback != nil {
			config.ValidateCallback(cr.Callback, "wecom", true, bad)
		}
		for _, t := range cr.Tickets {
			if t == AgentConfig.Type && cr.AgentID <= 0 {
				bad("agentid", "required for the agent_config ticket: the application's AgentId")
			}
		}
		if cr.AgentID < 0 {
			bad("agentid", "must be positive")
		}
	},
	Build: func(env *Env, cr config.Credential) (Built, error) {
		c := token.Credential{ID: cr.ID, Kind: "wecom",
			Source:      &WeComSource{Client: env.Client, CorpID: cr.CorpID, Secret: cr.Secret},
			Fingerprint: token.Fingerprint("wecom", cr.CorpID, cr.Secret, env.Client.WeCom)}
		c.Children = children(env, cr.ID, cr.CorpID, ticketsOf(wecomTickets, cr.Tickets))
		return withCallback(Built{Credential: c, Receiver: cr.CorpID}, cr), nil
	},
	Callback: &Callback{Verify: true, Encrypted: true},
	Tickets:  wecomTickets,
	Facade:   facade.WeCom,
}

func init() { Default.Register(WeCom) }

// wecomTickets are a WeCom application's tickets.
var wecomTickets = []*Ticket{CorpJSAPI, AgentConfig}

// corpIDPattern is the shape of a WeCom CorpID: "ww" and 16 lowercase hex
// digits, or "wx" and 16 for corps registered as WeChat enterprise
// accounts (企业号) before WeCom; WeCom's own message-crypto sample uses
// the corp wx5823bf96d3bd56c7.
var corpIDPattern = regexp.MustCompile(`^w[wx][0-9a-f]{16}$`)

// WeComSource fetches one WeCom application's token from gettoken, which
// may answer the token it issued already until that one expires.
type WeComSource struct {
	Client         *wechat.Client
	CorpID, Secret string
}

// Fetch implements token.Source; it is safe for concurrent use.
func (s *WeComSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	tok, err := s.Client.WeComToken(ctx, s.CorpID, s.Secret)
	return token.Fetched{Token: tok}, err
}

// Check implements token.Checker with WeCom's get_api_domain_ip, which
// costs none of gettoken's quota.
func (s *WeComSource) Check(ctx context.Context, tok string) error {
	_, err := s.Client.WeComAPIDomainIP(ctx, tok)
	return err
}
