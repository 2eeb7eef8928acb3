package kind

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Ticket is one type of JS-SDK ticket: a credential derived from an
// access token (its parent), fetched with it. WeChat answers a fetch
// within a ticket's life with the same ticket and expires_in 7200, however
// old the ticket is, so a ticket is a repeating source: its life counts
// from the first answer that carried it, it is served to its expiry and
// replaced just after. A new access token does not end a ticket.
type Ticket struct {
	// Type names it in configuration (tickets: [jsapi]) and in the API
	// (/v1/tokens/{id}/tickets/{type}).
	Type string
	// Signs is what the ticket signs: "config" for wx.config,
	// "agentConfig" for WeCom's wx.agentConfig, "" for none (a card
	// ticket signs cardSign, a different algorithm).
	Signs string
	// fetch gets the ticket with the parent's access token.
	fetch func(ctx context.Context, c *wechat.Client, accessToken string) (wechat.Token, error)
	// wecom: the ticket counts against WeCom's hourly ticket limits.
	wecom bool
}

// The JS-SDK tickets.
var (
	// JSAPI is an Official Account's (or an authorizer's) jsapi_ticket,
	// for wx.config: GET /cgi-bin/ticket/getticket?type=jsapi.
	JSAPI = &Ticket{Type: "jsapi", Signs: "config", fetch: func(ctx context.Context, c *wechat.Client, tok string) (wechat.Token, error) {
		return c.Ticket(ctx, tok, "jsapi")
	}}
	// WXCard is the card api_ticket: GET /cgi-bin/ticket/getticket?type=wx_card.
	WXCard = &Ticket{Type: "wx_card", fetch: func(ctx context.Context, c *wechat.Client, tok string) (wechat.Token, error) {
		return c.Ticket(ctx, tok, "wx_card")
	}}
	// CorpJSAPI is a WeCom corp's ticket, for wx.config:
	// GET /cgi-bin/get_jsapi_ticket. Configured as "jsapi" on a wecom
	// credential.
	CorpJSAPI = &Ticket{Type: "jsapi", Signs: "config", wecom: true, fetch: func(ctx context.Context, c *wechat.Client, tok string) (wechat.Token, error) {
		return c.WeComJSAPITicket(ctx, tok)
	}}
	// AgentConfig is a WeCom application's ticket, for wx.agentConfig:
	// GET /cgi-bin/ticket/get?type=agent_config.
	AgentConfig = &Ticket{Type: "agent_config", Signs: "agentConfig", wecom: true, fetch: func(ctx context.Context, c *wechat.Client, tok string) (wechat.Token, error) {
		return c.WeComAgentTicket(ctx, tok)
	}}
)

// TicketKind is the kind shown for ticket credentials.
const TicketKind = "ticket"

// TicketID is the id of credential id's ticket of type typ. Configured
// ids and appids hold no "/", so the namespace cannot collide with them.
func TicketID(id, typ string) string { return id + "/tickets/" + typ }

// credential is the ticket credential of the credential parent, whose
// account is account (a corpid for WeCom's tickets).
func (t *Ticket) credential(env *Env, parent, account string) token.Credential {
	s := &ticketSource{client: env.Client, t: t}
	if t.wecom {
		s.limit, s.corp, s.app = env.wecomLimits(), account, parent
	}
	return token.Credential{ID: TicketID(parent, t.Type), Kind: TicketKind, Parent: parent, Repeating: true, Source: s}
}

// ticketSource fetches a ticket with its parent's token.
type ticketSource struct {
	client *wechat.Client
	t      *Ticket
	// limit counts WeCom ticket fetches by corp and by application.
	limit     *hourly
	corp, app string
}

// Fetch implements token.Source; it is safe for concurrent use. A dead
// access token answers 40001 (42001, 40014), which the manager takes as
// the parent's.
func (s *ticketSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	if s.limit != nil {
		if wait, ok := s.limit.take(time.Now(), s.corp, s.app); !ok {
			return token.Fetched{}, &token.RetryAfterError{After: wait,
				Err: fmt.Errorf("WeCom's hourly ticket limit (%d a corp, %d an application) is spent here (%w)", corpTicketsPerHour, appTicketsPerHour, token.ErrNotCalled)}
		}
	}
	tok, err := s.t.fetch(ctx, s.client, req.Parent)
	if s.limit != nil && wechat.ErrCode(err) == wechat.CodeDailyQuota {
		// WeCom answers its hourly ticket limits with 45009 and blocks
		// the corp or application for the hour, not the day.
		err = &token.RetryAfterError{Err: err, After: time.Hour}
	}
	return token.Fetched{Token: tok}, err
}

// WeCom's limits on ticket fetches: 400 an hour per corp, 100 per
// application, corp and agent tickets together.
const (
	corpTicketsPerHour = 400
	appTicketsPerHour  = 100
)

// hourly counts WeCom ticket fetches in the current clock hour, in this
// process: a fetch beyond WeCom's limits is not made, as WeCom would
// refuse it and block the corp for the hour.
type hourly struct {
	mu         sync.Mutex
	hour       time.Time
	corp, apps map[string]int
}

// take counts one fetch by corp's application app at now, or says how long
// until the next hour if a limit is spent.
func (h *hourly) take(now time.Time, corp, app string) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hour := now.Truncate(time.Hour); !hour.Equal(h.hour) {
		h.hour, h.corp, h.apps = hour, map[string]int{}, map[string]int{}
	}
	if h.corp[corp] >= corpTicketsPerHour || h.apps[app] >= appTicketsPerHour {
		return h.hour.Add(time.Hour).Sub(now), false
	}
	h.corp[corp]++
	h.apps[app]++
	return 0, true
}

// ticketsOf returns the tickets of have named in types.
func ticketsOf(have []*Ticket, types []string) []*Ticket {
	var out []*Ticket
	for _, typ := range types {
		for _, t := range have {
			if t.Type == typ {
				out = append(out, t)
			}
		}
	}
	return out
}

// children are the ticket credentials of the credential id, of account.
func children(env *Env, id, account string, ts []*Ticket) []token.Credential {
	var out []token.Credential
	for _, t := range ts {
		out = append(out, t.credential(env, id, account))
	}
	return out
}
