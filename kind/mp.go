package kind

import (
	"context"
	"regexp"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// MP is an Official Account, Mini Program or Mini Game: an appid and its
// AppSecret, fetched through stable_token (default) or the classic
// cgi-bin/token.
var MP = &Kind{
	Name:   "mp",
	Fields: []string{"appid", "mode", "callback", "tickets"},
	Defaults: func(cr *config.Credential) {
		if cr.ID == "" {
			cr.ID = cr.AppID
		}
		if cr.Mode == "" {
			cr.Mode = config.ModeStable
		}
	},
	Validate: func(cr config.Credential, bad Bad) {
		if cr.AppID == "" {
			bad("appid", "required for kind mp")
		} else if !appIDPattern.MatchString(cr.AppID) {
			bad("appid", "want wx and 16 lowercase hex digits (the account's AppID), got %q", cr.AppID)
		}
		if cr.Mode != config.ModeStable && cr.Mode != config.ModeClassic {
			bad("mode", "want stable or classic, got %q", cr.Mode)
		}
		if cr.Callback != nil {
			config.ValidateCallback(cr.Callback, "mp", false, bad)
		}
	},
	Build: func(env *Env, cr config.Credential) (Built, error) {
		c := token.Credential{ID: cr.ID, Kind: "mp",
			Fingerprint: token.Fingerprint("mp", cr.AppID, cr.Secret, cr.Mode, env.Client.API)}
		if cr.Mode == config.ModeClassic {
			c.Source = &ClassicSource{Client: env.Client, AppID: cr.AppID, Secret: cr.Secret}
		} else {
			c.Stable = true
			c.Source = &StableSource{Client: env.Client, AppID: cr.AppID, Secret: cr.Secret}
		}
		c.Children = children(env, cr.ID, cr.AppID, ticketsOf(accountTickets, cr.Tickets))
		return withCallback(Built{Credential: c, Receiver: cr.AppID}, cr), nil
	},
	Callback: &Callback{Verify: true},
	Tickets:  accountTickets,
	Facade:   facade.MP,
}

func init() { Default.Register(MP) }

// accountTickets are an Official Account's tickets, and an authorizer's.
var accountTickets = []*Ticket{JSAPI, WXCard}

// appIDPattern is the shape of every WeChat AppID (Official Account, Mini
// Program, Mini Game, test account, third-party platform): "wx" and 16
// lowercase hex digits. Checking it at start catches a placeholder such as
// "wx..." before it is sent to WeChat.
var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

// withCallback adds the credential's callback keys, if it has a callback.
func withCallback(b Built, cr config.Credential) Built {
	if cr.Callback != nil {
		b.CallbackToken, b.AESKey = cr.Callback.Token, cr.Callback.EncodingAESKey
	}
	return b
}

// ClassicSource fetches from GET /cgi-bin/token: every call issues a new
// token, and the previous one stays valid about 5 minutes.
type ClassicSource struct {
	Client        *wechat.Client
	AppID, Secret string
}

// Fetch implements token.Source; it is safe for concurrent use.
func (s *ClassicSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	tok, err := s.Client.ClassicToken(ctx, s.AppID, s.Secret)
	return token.Fetched{Token: tok}, err
}

// Check implements token.Checker with getcallbackip, which costs none of
// the token endpoint's daily quota.
func (s *ClassicSource) Check(ctx context.Context, tok string) error {
	_, err := s.Client.CallbackIP(ctx, tok)
	return err
}

// StableSource fetches from POST /cgi-bin/stable_token: a normal call
// answers the current token while it is valid; force_refresh issues a new
// one (20 a day), and the old one stays valid to its own expiry.
type StableSource struct {
	Client        *wechat.Client
	AppID, Secret string
}

// Fetch implements token.Source; it is safe for concurrent use.
func (s *StableSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	tok, err := s.Client.StableToken(ctx, s.AppID, s.Secret, req.Force)
	return token.Fetched{Token: tok}, err
}

// Check implements token.Checker with getcallbackip.
func (s *StableSource) Check(ctx context.Context, tok string) error {
	_, err := s.Client.CallbackIP(ctx, tok)
	return err
}
