package kind

import (
	"context"

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
	CorpJSAPI = &Ticket{Type: "jsapi", Signs: "config", fetch: func(ctx context.Context, c *wechat.Client, tok string) (wechat.Token, error) {
		return c.WeComJSAPITicket(ctx, tok)
	}}
	// AgentConfig is a WeCom application's ticket, for wx.agentConfig:
	// GET /cgi-bin/ticket/get?type=agent_config.
	AgentConfig = &Ticket{Type: "agent_config", Signs: "agentConfig", fetch: func(ctx context.Context, c *wechat.Client, tok string) (wechat.Token, error) {
		return c.WeComAgentTicket(ctx, tok)
	}}
)

// TicketKind is the kind shown for ticket credentials.
const TicketKind = "ticket"

// TicketID is the id of credential id's ticket of type typ. Configured
// ids and appids hold no "/", so the namespace cannot collide with them.
func TicketID(id, typ string) string { return id + "/tickets/" + typ }

// credential is the ticket credential of the credential parent.
func (t *Ticket) credential(c *wechat.Client, parent string) token.Credential {
	return token.Credential{ID: TicketID(parent, t.Type), Kind: TicketKind, Parent: parent, Repeating: true,
		Source: &ticketSource{client: c, t: t}}
}

// ticketSource fetches a ticket with its parent's token.
type ticketSource struct {
	client *wechat.Client
	t      *Ticket
}

// Fetch implements token.Source; it is safe for concurrent use. A dead
// access token answers 40001 (42001, 40014), which the manager takes as
// the parent's.
func (s *ticketSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	tok, err := s.t.fetch(ctx, s.client, req.Parent)
	return token.Fetched{Token: tok}, err
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

// children are the ticket credentials of the credential id.
func children(c *wechat.Client, id string, ts []*Ticket) []token.Credential {
	var out []token.Credential
	for _, t := range ts {
		out = append(out, t.credential(c, id))
	}
	return out
}
