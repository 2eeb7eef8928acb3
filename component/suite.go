package component

import (
	"context"
	"log/slog"
	"strings"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/wechat"
)

// NewSuite returns the Platform of a WeCom suite (第三方应用), WECHAT.md
// §7: cfg.AppID is the suite id, cfg.Secret its secret. WeCom pushes a
// suite_ticket to the suite's command callback every ten minutes; it
// lives 30 minutes, and no API asks for another, so a gap can only be
// reported. The corps that install the suite become its authorizers,
// "{suite}/{corpid}", each with its permanent code as durable state.
//
// A suite id starting with "dk" is a custom-developed app template
// (代开发): the permanent code is the authorized corp's app secret, and
// its tokens come from gettoken without the suite's token.
func NewSuite(cfg Config, up *wechat.Client, s store.Store, log *slog.Logger) *Platform {
	fam := suiteApps
	if IsCustomApp(cfg.AppID) {
		fam = customApps
	}
	return newPlatform(fam, cfg, up, s, log)
}

// IsCustomApp reports whether suiteID is a custom-developed app template
// (代开发): WeCom gives those ids starting with "dk".
func IsCustomApp(suiteID string) bool { return strings.HasPrefix(suiteID, "dk") }

// suiteFamily is a WeCom suite; fetch is how its corps' tokens come.
func suiteFamily(fetch func(ctx context.Context, p *Platform, suiteToken, corpid, code string) (wechat.Token, string, error), independent bool) *family {
	return &family{
		kind: KindSuite, childKind: KindAuthCorp,
		ticket:     callback.InfoSuiteTicket,
		ticketLife: SuiteTicketLife,
		host:       func(c *wechat.Client) string { return c.WeCom },
		events: map[string]action{
			callback.InfoSuiteTicket:        onTicket,
			callback.InfoCreateAuth:         onAuthorized,
			callback.InfoResetPermanentCode: onAuthorized,
			callback.InfoCancelAuth:         onUnauthorized,
			callback.InfoChangeAuth:         onChanged,
		},
		token: func(ctx context.Context, p *Platform, ticket string) (wechat.Token, error) {
			return p.up.SuiteToken(ctx, p.cfg.AppID, p.cfg.Secret, ticket)
		},
		// The auth code of create_auth (or, for a custom app,
		// reset_permanent_code) is good once and for ten minutes;
		// get_permanent_code answers the corp and its permanent code,
		// which never changes unless a custom app's is reset.
		exchange: func(ctx context.Context, p *Platform, st, code string) (grant, error) {
			a, err := p.up.PermanentCode(ctx, st, code, p.cfg.PermanentCodeV1)
			if err != nil {
				return grant{}, err
			}
			return grant{id: a.CorpID, state: a.PermanentCode, token: a.Token,
				log: []any{"corp_name", a.CorpName, "agentid", a.AgentID, "customized", a.Customized}}, nil
		},
		fetch: fetch,
		// get_api_domain_ip takes any WeCom access token and costs no
		// token quota.
		check: func(ctx context.Context, p *Platform, tok string) error {
			_, err := p.up.WeComAPIDomainIP(ctx, tok)
			return err
		},
		independent: independent,
		stateName:   "permanent_code",
		noState:     wechat.CodeBadPermanentCode,
	}
}

var (
	// suiteApps: a corp's token is get_corp_token's, with the suite's
	// token and the corp's permanent code.
	suiteApps = suiteFamily(func(ctx context.Context, p *Platform, st, corpid, code string) (wechat.Token, string, error) {
		tok, err := p.up.CorpToken(ctx, st, corpid, code)
		return tok, code, err
	}, false)
	// customApps: the permanent code is the corp's app secret, and the
	// token is gettoken's, as for any WeCom application.
	customApps = suiteFamily(func(ctx context.Context, p *Platform, _, corpid, code string) (wechat.Token, string, error) {
		tok, err := p.up.WeComToken(ctx, corpid, code)
		return tok, code, err
	}, true)
)
