package wechat

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Failover between the entries to the same API (api.weixin.qq.com and
// api2.weixin.qq.com). Calls go to one active host. A call that cannot
// reach it is sent once more to another host, which becomes active if it
// answers; health checks (health.go) move calls back to the primary once it
// answers again, and off an active host that cannot be reached.

// UpstreamStatus describes one API host as the Client last saw it, through
// its calls and health checks. It carries no secret.
type UpstreamStatus struct {
	// URL is the host's base URL as configured, without user information,
	// query or fragment.
	URL string
	// Active reports whether calls go to this host now.
	Active bool
	// Healthy reports whether the host's last health check or call got an
	// answer that was not a 5xx status. A host not yet seen counts as
	// healthy.
	Healthy bool
	// LastCheck is when the host's last health check ended; zero if it
	// has not been checked.
	LastCheck time.Time
	// LastError says why the host is unhealthy; it is empty while the host
	// is healthy.
	LastError string
	// Failovers counts the times calls moved off this host because it could
	// not be reached.
	Failovers int
}

// upstreams is the state of a Client's API hosts. urls and shown are fixed
// at creation; the rest is guarded by mu.
type upstreams struct {
	urls  []string // base URLs, the primary first
	shown []string // urls as Upstreams reports them

	mu     sync.Mutex
	active int    // index into urls of the host calls go to
	gen    uint64 // counts changes of active
	hosts  []hostState
}

type hostState struct {
	healthy   bool
	lastCheck time.Time
	lastErr   string
	failovers int
}

func newUpstreams(primary string, failover []string) *upstreams {
	u := &upstreams{urls: []string{primary}}
	for _, f := range failover {
		f = strings.TrimRight(f, "/")
		if f != "" && !slices.Contains(u.urls, f) {
			u.urls = append(u.urls, f)
		}
	}
	u.hosts = make([]hostState, len(u.urls))
	for i, s := range u.urls {
		u.shown = append(u.shown, redactURL(s))
		u.hosts[i].healthy = true
	}
	return u
}

// redactURL drops from a base URL what may be secret.
func redactURL(s string) string {
	p, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}

// upstreams returns the state of the API hosts, creating it at first use
// from API and APIFailover.
func (c *Client) upstreams() *upstreams {
	if u := c.ups.Load(); u != nil {
		return u
	}
	c.ups.CompareAndSwap(nil, newUpstreams(c.api(), c.APIFailover))
	return c.ups.Load()
}

// Upstreams reports the API hosts, the primary (API) first, then
// APIFailover in order.
func (c *Client) Upstreams() []UpstreamStatus {
	u := c.upstreams()
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]UpstreamStatus, len(u.urls))
	for i, h := range u.hosts {
		out[i] = UpstreamStatus{URL: u.shown[i], Active: i == u.active, Healthy: h.healthy,
			LastCheck: h.lastCheck, LastError: h.lastErr, Failovers: h.failovers}
	}
	return out
}

// doAPI is do on the active API host, with path holding the query. A call
// that cannot reach the host (see unreachable) is sent once more, to the
// host other calls have already moved to or else to the next in the list;
// if that one answers, whatever its answer, it becomes active. An HTTP
// status or a WeChat errcode is an answer and moves nothing; nor does the
// caller's own cancellation or deadline, which says nothing of the host.
//
// A call retried after a timeout may repeat one the first host did carry
// out: a classic token or a forced stable token issued that we never see
// (the token we hold then dies early, and callers' 40001 reports heal
// that), or an authorizer refresh token rotated. That is no worse than the
// refresh scheduler retrying the same Retry-class error a moment later.
func (c *Client) doAPI(ctx context.Context, op, method, path string, body []byte, out any) error {
	u := c.upstreams()
	from, gen := u.current()
	resp, err := c.send(ctx, method, u.urls[from]+path, body)
	if err == nil {
		u.answered(from, resp.StatusCode)
		return decode(op, resp, out)
	}
	err = transportError(err)
	if ctx.Err() != nil || !unreachable(err) {
		return fmt.Errorf("wechat: %s: %w", op, err)
	}
	to, ok := u.failed(from, err)
	if !ok {
		return fmt.Errorf("wechat: %s: %w", op, err)
	}
	resp, err2 := c.send(ctx, method, u.urls[to]+path, body)
	if err2 != nil {
		err2 = transportError(err2)
		if ctx.Err() == nil && unreachable(err2) {
			u.failed(to, err2)
		}
		return fmt.Errorf("wechat: %s: %w (after failover from: %w)", op, err2, err)
	}
	u.answered(to, resp.StatusCode)
	u.moveOff(from, to, gen)
	return decode(op, resp, out)
}

// current returns the active host and the generation it belongs to.
func (u *upstreams) current() (int, uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.active, u.gen
}

// answered records that host i answered a call with status.
func (u *upstreams) answered(i, status int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := &u.hosts[i]
	if status >= 500 {
		h.healthy, h.lastErr = false, fmt.Sprintf("HTTP status %d", status)
		return
	}
	h.healthy, h.lastErr = true, ""
}

// failed records that a call could not reach host i, and returns the host
// to retry it on: the active one if other calls have moved there already,
// else the next in the list. It reports false when there is no other host.
func (u *upstreams) failed(i int, err error) (int, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hosts[i].healthy, u.hosts[i].lastErr = false, err.Error()
	switch {
	case u.active != i:
		return u.active, true
	case len(u.urls) > 1:
		return (i + 1) % len(u.urls), true
	}
	return 0, false
}

// moveOff makes host to active in place of host from, which a call of
// generation gen could not reach. If calls have moved since that call
// began, whether off from or back to it, the move is not made again: many
// calls failing at once count one failover, and a call that failed before
// a health check found the primary answering does not undo that finding.
func (u *upstreams) moveOff(from, to int, gen uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.active == from && u.gen == gen {
		u.hosts[from].failovers++
		u.activate(to)
	}
}

// activate makes host i active; u.mu must be held.
func (u *upstreams) activate(i int) {
	if u.active != i {
		u.active = i
		u.gen++
	}
}

// transportError strips net/http's *url.Error, which carries the request
// URL (and with it, for the classic token, the AppSecret), and is itself a
// net.Error whatever it wraps.
func transportError(err error) error {
	var uerr *url.Error
	for errors.As(err, &uerr) {
		err = uerr.Err
	}
	return err
}

// unreachable reports whether err, returned instead of a response, means
// the host could not be reached: a failed dial (refused, no route, DNS), a
// connection reset or closed before the answer, a failed TLS handshake, or
// a timeout awaiting the answer. err must have been through transportError.
//
// A request that went wrong in another way (a bad URL, a redirect loop)
// would go wrong on any host, and a transport error not recognized here
// does not move calls either: a call that may have reached WeChat is
// better not repeated elsewhere on a guess.
func unreachable(err error) bool {
	var (
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
	)
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &certErr) || errors.As(err, &recErr) || errors.As(err, &alert)
}
