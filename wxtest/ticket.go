package wxtest

import "net/http"

// ticketRandBytes makes tickets 86 base64 characters after the serial, the
// length of the ticket in the official JS-SDK signature example.
const ticketRandBytes = 64

// ticketTypes are the ticket kinds getticket hands out.
var ticketTypes = map[string]bool{"jsapi": true, "wx_card": true}

// ticketReply is getticket's success answer.
type ticketReply struct {
	ErrCode   int    `json:"errcode"`
	ErrMsg    string `json:"errmsg"`
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// serveTicket answers GET /cgi-bin/ticket/getticket?access_token=..&type=..
// with a new JS-SDK ticket, valid for Config.Lifetime, on every call with a
// valid token. Issuing a fresh ticket each time, rather than repeating the
// current one, lets a test see from Stats.TicketCalls and from the values
// whether a token server caches tickets as it must. Tickets are not
// remembered: JS-SDK signatures are checked by the WeChat app in the user's
// browser, which the fake does not play, so no endpoint here reads them.
func (f *Fake) serveTicket(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, f.ticket(r))
}

func (f *Fake) ticket(r *http.Request) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	owner, e, valid := f.useToken(r, now)
	if owner != nil {
		owner.stats.TicketCalls++
	}
	if !valid {
		return e
	}
	if !ticketTypes[r.URL.Query().Get("type")] {
		return fail(codeInvalidArgs)
	}
	value, err := f.randomString(ticketRandBytes)
	if err != nil {
		return fail(codeSystemBusy)
	}
	return ticketReply{ErrMsg: "ok", Ticket: value, ExpiresIn: int(f.cfg.lifetime().Seconds())}
}
