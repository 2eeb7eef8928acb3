package wxtest

import (
	"net/http"
	"time"
)

// WeCom's limits on JS-SDK ticket fetches, from its frequency-limit page
// (developer.work.weixin.qq.com/document/path/90454, "获取jsapi_ticket频率"):
// in one hour a corp may fetch at most 400 tickets, and a single application
// at most 100. The same page says a limit counted by the hour, once hit,
// blocks for 60 minutes. Past it WeCom answers 45009 "api freq out of
// limit", its errcode for frequency limits (45033 is for concurrent calls).
const (
	weComTicketsPerCorp = 400
	weComTicketsPerApp  = 100
	weComTicketWindow   = time.Hour
)

// hourLimit counts fetches over the last hour, and holds a block once the
// limit is hit.
type hourLimit struct {
	times   []time.Time // fetches within the window, oldest first
	blocked time.Time   // refused until then
}

// room reports whether one more fetch at now is within limit. Finding the
// limit reached starts a block of one window.
func (h *hourLimit) room(now time.Time, limit int) bool {
	if now.Before(h.blocked) {
		return false
	}
	i := 0
	for i < len(h.times) && now.Sub(h.times[i]) >= weComTicketWindow {
		i++
	}
	h.times = append(h.times[:0], h.times[i:]...)
	if len(h.times) >= limit {
		h.blocked = now.Add(weComTicketWindow)
		return false
	}
	return true
}

// appLimit names an hourly count: a corp's, or with perApp one of its
// applications'.
type appLimit struct {
	corp, app string
	perApp    bool
}

// serveWeComTicket answers GET /cgi-bin/get_jsapi_ticket?access_token=..
// (the corp's ticket, for wx.config) and GET
// /cgi-bin/ticket/get?access_token=..&type=agent_config (the application's,
// for wx.agentConfig) on the WeCom host.
func (f *Fake) serveWeComTicket(w http.ResponseWriter, r *http.Request, agent bool) {
	writeJSON(w, f.weComTicket(r, agent))
}

// weComTicket takes only a WeCom application's token. The corp ticket is
// one per corp, shared by its applications (WeCom calls it the corp's
// ticket); the agent ticket is one per application. Both kinds count
// against the same hourly limits, since the limit page names them
// together. A fetch refused by a limit is not counted toward it.
func (f *Fake) weComTicket(r *http.Request, agent bool) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	q := r.URL.Query()
	t, e, valid := f.ticketToken(q.Get("access_token"), now, true)
	key := TicketKey{Type: TicketJSAPI}
	known := true
	if agent {
		key.Type = TicketAgent
		known = q.Get("type") == TicketAgent
	}
	if t != nil {
		key.Account = t.corpID()
		if agent {
			key.App = t.app
		}
		f.countTicketCall(t, key, known)
	}
	if !valid {
		return e
	}
	if !known {
		return fail(codeInvalidArgs)
	}
	if !f.takeWeComTicket(t.corpID(), t.app, now) {
		return failf(codeDailyQuota, "api freq out of limit")
	}
	return f.currentTicket(key, now)
}

// takeWeComTicket counts one ticket fetch of an application against the
// corp's and the application's hourly limits, and reports false, counting
// nothing, if either is reached. The caller holds f.mu.
func (f *Fake) takeWeComTicket(corp, app string, now time.Time) bool {
	c, a := f.hourLimit(appLimit{corp: corp}), f.hourLimit(appLimit{corp: corp, app: app, perApp: true})
	corpRoom := c.room(now, weComTicketsPerCorp)
	appRoom := a.room(now, weComTicketsPerApp)
	if !corpRoom || !appRoom {
		return false
	}
	c.times = append(c.times, now)
	a.times = append(a.times, now)
	return true
}

// hourLimit returns the count named by k, creating it. The caller holds
// f.mu.
func (f *Fake) hourLimit(k appLimit) *hourLimit {
	h := f.ticketLimits[k]
	if h == nil {
		h = &hourLimit{}
		f.ticketLimits[k] = h
	}
	return h
}
