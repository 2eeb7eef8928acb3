package wxtest

import (
	"net/http"
	"time"
)

// ticketRandBytes makes tickets 86 base64 characters after the serial, the
// length of the ticket in the official JS-SDK signature example.
const ticketRandBytes = 64

// Ticket types, as the endpoints name them. WeCom's corp ticket has no type
// parameter; the fake files it under TicketJSAPI, the ticket wx.config is
// signed with.
const (
	TicketJSAPI = "jsapi"        // getticket?type=jsapi, and WeCom's get_jsapi_ticket
	TicketCard  = "wx_card"      // getticket?type=wx_card
	TicketAgent = "agent_config" // WeCom's ticket/get?type=agent_config
)

// ticketTypes are the ticket kinds getticket hands out.
var ticketTypes = map[string]bool{TicketJSAPI: true, TicketCard: true}

// TicketKey names one ticket the fake keeps: the platform holds one valid
// ticket per account and type, and for WeCom's agent tickets per
// application.
type TicketKey struct {
	// Account is the appid (an Official Account, Mini Program or a
	// third-party platform's authorizer) or the WeCom corpid, also for
	// the tokens of a suite's authorization by that corp.
	Account string
	// Type is TicketJSAPI or TicketCard for getticket, TicketJSAPI for a
	// WeCom corp's ticket, TicketAgent for a WeCom application's.
	Type string
	// App names the WeCom application of a TicketAgent ticket by the secret
	// it was added with (AddCorp), or for a suite's authorization by the
	// agentid get_permanent_code answered, in decimal; it is empty for
	// every other ticket.
	App string
}

// ticket is one issued JS-SDK ticket.
type ticket struct {
	key     TicketKey
	value   string
	issued  time.Time
	expires time.Time
}

// TicketInfo is what the fake knows of one ticket it issued.
type TicketInfo struct {
	Key   TicketKey
	Value string
	// Issued is when the value was first handed out; fetches after it
	// returned the same value until Expires.
	Issued time.Time
	// Expires is the end of its life, Config.TicketLifetime after Issued,
	// or the moment ExpireTicket ended it.
	Expires time.Time
}

func (t *ticket) info() TicketInfo {
	return TicketInfo{Key: t.key, Value: t.value, Issued: t.issued, Expires: t.expires}
}

// ticketReply is the success answer of every ticket endpoint.
type ticketReply struct {
	ErrCode   int    `json:"errcode"`
	ErrMsg    string `json:"errmsg"`
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// serveTicket answers GET /cgi-bin/ticket/getticket?access_token=..&type=..
// with the account's current ticket of that type; see currentTicket.
// Tickets are not checked anywhere: JS-SDK signatures are verified by the
// WeChat app in the user's browser, which the fake does not play.
func (f *Fake) serveTicket(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, f.ticket(r))
}

// ticket takes any valid token of the API host: an app's classic or stable
// token, or an authorizer_access_token, whose tickets are the authorizer
// appid's. A WeCom token is unknown there (40001).
func (f *Fake) ticket(r *http.Request) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	q := r.URL.Query()
	typ := q.Get("type")
	t, e, valid := f.ticketToken(q.Get("access_token"), now, false)
	var key TicketKey
	if t != nil {
		key = TicketKey{Account: t.owner.id, Type: typ}
		f.countTicketCall(t, key, ticketTypes[typ])
	}
	if !valid {
		return e
	}
	if !ticketTypes[typ] {
		return fail(codeInvalidArgs)
	}
	return f.currentTicket(key, now)
}

// ticketToken checks the access_token of a ticket fetch on the API host
// (wecom false) or the WeCom host, and returns the token when the fake
// knows it, valid or not. A token of the other host is unknown here: 40001
// on the API host, and on the WeCom host 40014, which WeCom answers for a
// token that is not an application's (WECHAT.md §1: a suite_access_token
// gives 40014), a suite's or provider's token included. The caller holds
// f.mu.
func (f *Fake) ticketToken(value string, now time.Time, wecom bool) (*token, apiError, bool) {
	t := f.tokens[value]
	if t != nil && (t.wecom != wecom || t.kind != kindAccess) {
		if wecom {
			return nil, fail(codeInvalidToken), false
		}
		return nil, fail(codeInvalidCredential), false
	}
	_, e, valid := f.useValue(value, now)
	return t, e, valid
}

// countTicketCall counts a ticket fetch made with t, and under key when the
// call named a ticket type that exists. The caller holds f.mu.
func (f *Fake) countTicketCall(t *token, key TicketKey, known bool) {
	t.owner.stats.TicketCalls++
	if known {
		f.ticketCalls[key]++
	}
}

// currentTicket answers with key's ticket, issuing a new one if there is
// none or it has expired. As on the platform (WECHAT.md §1), a fetch within
// a ticket's life returns the same ticket, and expires_in is always the full
// Config.TicketLifetime (7200 s by default), never the time left: a caller
// must count a ticket's life from the first time it saw the value. A new
// access token leaves the ticket alone (WeChat's behaviour there is
// unverified; ExpireTicket plays the other case). The caller holds f.mu.
func (f *Fake) currentTicket(key TicketKey, now time.Time) any {
	life := f.cfg.ticketLifetime()
	cur := f.tickets[key]
	if cur == nil || !now.Before(cur.expires) {
		value, err := f.randomString(ticketRandBytes)
		if err != nil {
			return fail(codeSystemBusy)
		}
		f.pruneTickets(now)
		cur = &ticket{key: key, value: value, issued: now, expires: now.Add(life)}
		f.tickets[key] = cur
		f.ticketValues[value] = cur
	}
	return ticketReply{ErrMsg: "ok", Ticket: cur.value, ExpiresIn: int(life / time.Second)}
}

// pruneTickets forgets tickets that expired a day ago, as prune does for
// tokens. The caller holds f.mu.
func (f *Fake) pruneTickets(now time.Time) {
	for v, t := range f.ticketValues {
		if now.Sub(t.expires) > forget {
			delete(f.ticketValues, v)
			if f.tickets[t.key] == t {
				delete(f.tickets, t.key)
			}
		}
	}
}

// TicketCalls counts the fetches of key's ticket: calls with a token the
// fake traces to key's account (and, for TicketAgent, application), valid
// or not, that named key's type, including those refused by WeCom's hourly
// limits. Stats.TicketCalls counts an account's calls at all ticket
// endpoints together.
func (f *Fake) TicketCalls(key TicketKey) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ticketCalls[key]
}

// TicketInfo returns key's current ticket: the last one issued, which may
// have expired. It reports false when none was issued (or it was forgotten
// a day after expiry).
func (f *Fake) TicketInfo(key TicketKey) (TicketInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tickets[key]; t != nil {
		return t.info(), true
	}
	return TicketInfo{}, false
}

// LookupTicket returns what the fake knows of a ticket value, current or
// not, so that a test can tell whether a ticket a server handed out was
// still alive. It reports false for a value the fake never issued, or forgot
// a day after its expiry.
func (f *Fake) LookupTicket(value string) (TicketInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.ticketValues[value]; t != nil {
		return t.info(), true
	}
	return TicketInfo{}, false
}

// ExpireTicket ends key's current ticket now, as if its life were over: the
// next fetch issues a new one. It plays a ticket ended early, for example by
// a platform that does tie tickets to access tokens. Unknown keys are
// ignored.
func (f *Fake) ExpireTicket(key TicketKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	if t := f.tickets[key]; t != nil && now.Before(t.expires) {
		t.expires = now
	}
}
