package component

import (
	"context"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/wechat"
)

// family is what differs between the platforms this package runs: an
// Open Platform third-party platform (WECHAT.md §4) and a WeCom suite
// (§7). Both are pushed a ticket every ten minutes, fetch their own
// token with the newest one, and turn the authorization codes pushed to
// them into authorizers: credentials of their own, with a durable state
// (a refresh token, a permanent code) that must never be lost. The rest
// of the package (the ticket, the authorizers' lifecycle, import,
// listing) is the same for both.
type family struct {
	// kind and childKind are the kinds of the platform's credential and
	// of its authorizers'.
	kind, childKind string
	// ticket is what the pushed ticket is called, for logs and errors.
	ticket string
	// ticketLife is how long WeChat accepts a ticket after its push.
	ticketLife time.Duration
	// host is the WeChat host the platform's token comes from, which its
	// fingerprint names.
	host func(*wechat.Client) string
	// events maps the InfoTypes the platform acts on to what they do;
	// any other is ignored.
	events map[string]action

	// token fetches the platform's own token with a ticket.
	token func(ctx context.Context, p *Platform, ticket string) (wechat.Token, error)
	// askForTicket asks WeChat to push a ticket now; nil where no API
	// can (WeCom: only the provider console triggers a push).
	askForTicket func(ctx context.Context, p *Platform) error
	// exchange trades an authorization code for an authorizer: its id,
	// its durable state and, where the answer carries one, its first
	// token. platformToken is the platform's current token.
	exchange func(ctx context.Context, p *Platform, platformToken, code string) (grant, error)
	// fetch refreshes an authorizer's token from its state and the
	// platform's token ("" when independent); next is the state to
	// store with the token (the same when it does not change).
	fetch func(ctx context.Context, p *Platform, platformToken, id, state string) (tok wechat.Token, next string, err error)
	// check validates an authorizer's token with a call that costs no
	// token quota.
	check func(ctx context.Context, p *Platform, tok string) error
	// independent: an authorizer's token is fetched without the
	// platform's token (a custom-developed app's, from gettoken).
	independent bool
	// stateName is what the authorizer's state is called, and noState
	// the errcode WeChat answers a fetch without one: the authorization
	// is lost, and only the account owner can grant it again.
	stateName string
	noState   int
}

// action is what a push asks of a platform.
type action int

const (
	onTicket       action = iota + 1 // store the newest ticket
	onAuthorized                     // exchange the code, store the authorizer
	onUnauthorized                   // revoke the authorizer
	onChanged                        // the grant changed; nothing to store
)

// grant is an authorizer an authorization code bought.
type grant struct {
	// id is the authorizer's appid or corpid.
	id string
	// state is its durable state (refresh token, permanent code).
	state string
	// token is its first access token, zero if the answer had none.
	token wechat.Token
	// log are attributes worth logging (what was granted).
	log []any
}

// pushed is the ticket a push carries, and when WeChat created it.
func pushed(ev callback.Event) (value string, created time.Time) {
	switch ev.InfoType {
	case callback.InfoComponentVerifyTicket:
		return ev.ComponentVerifyTicket, time.Unix(ev.CreateTime, 0)
	case callback.InfoSuiteTicket:
		return ev.SuiteTicket, time.Unix(ev.Timestamp, 0)
	}
	return "", time.Time{}
}

// subject is the authorizer a push names, "" if it names none (a
// create_auth push names its corp only through the code).
func subject(ev callback.Event) string {
	if ev.AuthorizerAppID != "" {
		return ev.AuthorizerAppID
	}
	return ev.AuthCorpID
}

// code is the authorization code a push carries.
func code(ev callback.Event) string {
	if ev.AuthorizationCode != "" {
		return ev.AuthorizationCode
	}
	return ev.AuthCode
}

// openPlatform is the Open Platform third-party platform (第三方平台).
var openPlatform = &family{
	kind: KindComponent, childKind: KindAuthorizer,
	ticket:     callback.InfoComponentVerifyTicket,
	ticketLife: TicketLife,
	host:       func(c *wechat.Client) string { return c.API },
	events: map[string]action{
		callback.InfoComponentVerifyTicket: onTicket,
		callback.InfoAuthorized:            onAuthorized,
		callback.InfoUpdateAuthorized:      onAuthorized,
		callback.InfoUnauthorized:          onUnauthorized,
	},
	token: func(ctx context.Context, p *Platform, ticket string) (wechat.Token, error) {
		return p.up.ComponentToken(ctx, p.cfg.AppID, p.cfg.Secret, ticket)
	},
	askForTicket: func(ctx context.Context, p *Platform) error {
		return p.up.StartPushTicket(ctx, p.cfg.AppID, p.cfg.Secret)
	},
	exchange: func(ctx context.Context, p *Platform, ct, code string) (grant, error) {
		auth, err := p.up.QueryAuth(ctx, ct, p.cfg.AppID, code)
		if err != nil {
			return grant{}, err
		}
		return grant{id: auth.AuthorizerAppID, state: auth.RefreshToken, token: auth.Token,
			log: []any{"func_info", auth.FuncInfo}}, nil
	},
	// The refresh token may change with every refresh; the manager
	// stores the new one in the same write as the token it came with.
	fetch: func(ctx context.Context, p *Platform, ct, appid, refresh string) (wechat.Token, string, error) {
		return p.up.AuthorizerToken(ctx, ct, p.cfg.AppID, appid, refresh)
	},
	// An authorizer's access token is an account's token, which
	// getcallbackip accepts like any other.
	check: func(ctx context.Context, p *Platform, tok string) error {
		_, err := p.up.CallbackIP(ctx, tok)
		return err
	},
	stateName: "authorizer_refresh_token",
	noState:   wechat.CodeRefreshInvalid,
}
