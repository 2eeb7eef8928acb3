package facade

import (
	"net/http"
	"time"
)

// ticketAnswer is the answer of WeChat's and WeCom's ticket endpoints.
type ticketAnswer struct {
	ErrCode   int    `json:"errcode"`
	ErrMsg    string `json:"errmsg"`
	Ticket    string `json:"ticket"`
	ExpiresIn int64  `json:"expires_in"`
}

// CodeInvalidArgs is WeChat's answer to a ticket type it does not know.
const CodeInvalidArgs = 40097

// mpTicket answers GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card
// for an Official Account's or an authorizer's token.
func (f *Facade) mpTicket(r *http.Request) (any, *Error) {
	typ := r.URL.Query().Get("type")
	if typ != "jsapi" && typ != "wx_card" {
		return nil, &Error{Code: CodeInvalidArgs, Msg: "invalid args: type must be jsapi or wx_card"}
	}
	return f.ticket(r, MP, typ)
}

// corpTicket answers GET /cgi-bin/get_jsapi_ticket?access_token=, a WeCom
// corp's ticket for wx.config (the credential's "jsapi" ticket).
func (f *Facade) corpTicket(r *http.Request) (any, *Error) {
	return f.ticket(r, WeCom, "jsapi")
}

// agentTicket answers GET /cgi-bin/ticket/get?access_token=&type=agent_config,
// a WeCom application's ticket for wx.agentConfig.
func (f *Facade) agentTicket(r *http.Request) (any, *Error) {
	if typ := r.URL.Query().Get("type"); typ != "agent_config" {
		return nil, &Error{Code: CodeInvalidArgs, Msg: "invalid args: type must be agent_config"}
	}
	return f.ticket(r, WeCom, "agent_config")
}

// ticket answers the ticket of type typ of the credential whose token,
// of family fam, the request carries.
func (f *Facade) ticket(r *http.Request, fam Family, typ string) (any, *Error) {
	if e := method(r, http.MethodGet); e != nil {
		return nil, e
	}
	it, e := f.holder(r, r.URL.Query().Get("access_token"), fam)
	if e != nil {
		return nil, e
	}
	var tid string
	if f.tickets != nil {
		tid = f.tickets(it.id)[typ]
	}
	if tid == "" {
		return nil, &Error{Code: CodeUnauthorizedAPI, Msg: "api unauthorized: wxtoken does not keep the " + typ + " ticket of this account (tickets: [" + typ + "] in its configuration)"}
	}
	snap, e := f.current(r, tid)
	if e != nil {
		return nil, e
	}
	return ticketAnswer{0, "ok", snap.Token, expiresIn(snap, time.Now(), it.sdk, ticketEndpoint)}, nil
}
