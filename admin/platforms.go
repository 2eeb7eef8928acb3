package admin

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Platform is a third-party platform as the admin API lists it
// (*component.Platform).
type Platform interface {
	// AppID is the platform's component_appid, or the suite's id.
	AppID() string
	// Kind is the platform's kind: component, or suite.
	Kind() string
	// TicketGap describes a gap in WeChat's ticket pushes worth an
	// operator's attention, "" if none.
	TicketGap(ctx context.Context) (string, error)
	// TicketReceived is when its stored component_verify_ticket
	// arrived; zero if none is stored.
	TicketReceived(ctx context.Context) (time.Time, error)
}

// platformView is a third-party platform with its ticket's age and its
// number of authorizers.
type platformView struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	AppID string `json:"component_appid,omitempty"`
	// SuiteID is a WeCom suite's id.
	SuiteID string `json:"suite_id,omitempty"`
	// TicketGap says what is wrong with the platform's pushed ticket:
	// none yet, refused, expired, or late. A suite's lives 30 minutes,
	// and no API asks WeCom for another.
	TicketGap string `json:"ticket_gap,omitempty"`
	// TicketReceived is when the last component_verify_ticket arrived.
	// WeChat pushes one every ten minutes, so an age well past that
	// means pushes are not arriving; without a ticket the platform
	// cannot fetch its token.
	TicketReceived   *time.Time `json:"ticket_received_at,omitempty"`
	TicketAgeSeconds *int64     `json:"ticket_age_seconds,omitempty"`
	TicketError      string     `json:"ticket_error,omitempty"`
	Authorizers      int        `json:"authorizers"`
}

func (a *Admin) listPlatforms(ctx context.Context, _ *http.Request, _ *actor) (int, any, error) {
	ids := a.cfg.Tokens.IDs()
	now := a.now()
	out := []platformView{}
	for id, p := range a.cfg.Platforms {
		v := platformView{ID: id, Kind: p.Kind(), Authorizers: countAuthorizers(ids, id)}
		if v.Kind == "suite" {
			v.SuiteID = p.AppID()
		} else {
			v.AppID = p.AppID()
		}
		if gap, err := p.TicketGap(ctx); err == nil {
			v.TicketGap = gap
		}
		at, err := p.TicketReceived(ctx)
		switch {
		case err != nil:
			v.TicketError = err.Error()
		case !at.IsZero():
			age := int64(now.Sub(at) / time.Second)
			v.TicketReceived, v.TicketAgeSeconds = stamp(at), &age
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y platformView) int { return strings.Compare(x.ID, y.ID) })
	return http.StatusOK, map[string]any{"platforms": out}, nil
}

// authorizerRange is the run of ids that start "{platform}/": the
// platform's authorizers, "{platform}/{appid}", and their tickets,
// "…/tickets/{type}". ids are sorted, as the token manager's are, so the
// run is found by binary search without looking at every credential.
func authorizerRange(ids []string, platform string) []string {
	prefix := platform + "/"
	start := sort.SearchStrings(ids, prefix)
	n := sort.Search(len(ids)-start, func(i int) bool { return !strings.HasPrefix(ids[start+i], prefix) })
	return ids[start : start+n]
}

// isAuthorizer reports whether id, from platform's authorizerRange, is
// an authorizer rather than a ticket.
func isAuthorizer(id, platform string) bool {
	return !strings.Contains(id[len(platform)+1:], "/")
}

// countAuthorizers counts platform's authorizers among ids.
func countAuthorizers(ids []string, platform string) int {
	n := 0
	for _, id := range authorizerRange(ids, platform) {
		if isAuthorizer(id, platform) {
			n++
		}
	}
	return n
}

// appIDChars is what an appid search or cursor may hold: what an appid
// may (component.appIDPattern).
var appIDChars = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// listAuthorizers pages through a platform's authorizers in appid order:
// ?q= keeps those whose appid contains it (case-insensitive), ?after=
// starts after that appid, ?limit= (1 to 1000, default 50) bounds the
// page. The answer counts every match, and names the appid to ask the
// next page after ("" on the last page).
func (a *Admin) listAuthorizers(_ context.Context, r *http.Request, _ *actor) (int, any, error) {
	platform := r.PathValue("id")
	if _, ok := a.cfg.Platforms[platform]; !ok {
		return 0, nil, errorf(http.StatusNotFound, "not_found", "no third-party platform "+platform)
	}
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, errorf(http.StatusBadRequest, "bad_request", "limit: want 1 to 1000")
		}
		limit = n
	}
	search, after := q.Get("q"), q.Get("after")
	if search != "" && !appIDChars.MatchString(search) {
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "q: an appid or part of one: up to 64 letters, digits, - and _")
	}
	if after != "" && !appIDChars.MatchString(after) {
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "after: an appid: up to 64 letters, digits, - and _")
	}
	search = strings.ToLower(search)
	prefix := platform + "/"
	now := a.now()
	page := []credentialView{}
	matched, next := 0, ""
	for _, id := range authorizerRange(a.cfg.Tokens.IDs(), platform) {
		if !isAuthorizer(id, platform) {
			continue
		}
		appid := id[len(prefix):]
		if search != "" && !strings.Contains(strings.ToLower(appid), search) {
			continue
		}
		matched++
		if after != "" && appid <= after {
			continue
		}
		if len(page) == limit {
			next = page[len(page)-1].ID[len(prefix):]
			continue // counting the rest
		}
		snap, err := a.cfg.Tokens.Snapshot(id)
		if err != nil || snap.Owner != platform {
			matched--
			continue // removed meanwhile, or not an authorizer
		}
		page = append(page, a.view(id, snap, now))
	}
	return http.StatusOK, map[string]any{"authorizers": page, "matched": matched, "next": next}, nil
}

// upstreamView is one of WeChat's API hosts as the admin API lists it.
type upstreamView struct {
	URL       string     `json:"url"`
	Active    bool       `json:"active"`
	Healthy   bool       `json:"healthy"`
	LastCheck *time.Time `json:"last_check,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	Failovers int        `json:"failovers"`
}

func (a *Admin) listUpstreams(context.Context, *http.Request, *actor) (int, any, error) {
	out := []upstreamView{}
	if a.cfg.Upstreams != nil {
		for _, u := range a.cfg.Upstreams() {
			out = append(out, upstreamView{u.URL, u.Active, u.Healthy, stamp(u.LastCheck), u.LastError, u.Failovers})
		}
	}
	return http.StatusOK, map[string]any{"upstreams": out}, nil
}
