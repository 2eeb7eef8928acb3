package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Refresh timing. The server's expires_in already ends before the token
// can die (wxtoken never answers a lifetime past the moment its own next
// refresh makes the token invalid), so a value is served until then and no
// later; the background fetch starts at refreshAt of what is left, jittered
// so that many clients do not ask together.
const (
	refreshAt     = 0.75
	refreshJitter = 0.1
	// minRefresh keeps a short remaining life from turning into a stream
	// of fetches that answer the same value again.
	minRefresh = time.Second
	// maxRetry caps the wait between failed background fetches.
	maxRetry = 30 * time.Second
	// missHold is how long after a failed or uncacheable fetch a miss
	// waits before asking again.
	missHold = 100 * time.Millisecond
)

// entry is one cached value. It is replaced, never changed, except for
// used, which readers set so that a value nobody asks for is not refreshed.
type entry struct {
	value    string
	deadline time.Time // the value is not served from this moment
	refresh  time.Time // a background fetch starts from this moment
	used     atomic.Bool
}

// flight is one request to the server that several callers may wait on.
// It runs on the client's context, so a caller giving up does not cancel
// it for the others.
type flight struct {
	done  chan struct{}
	value string
	err   error
}

// source is the cache of one token or ticket.
type source struct {
	c      *Client
	key    string // the id as watched: "{id}" or "{id}/tickets/{type}"
	path   string // the GET path, escaped
	id     string // the credential id
	ticket bool

	cur atomic.Pointer[entry]

	// tokens and tickets are the one TokenSource or TicketSource of this
	// source, so that the same id always gives the same value.
	tokens  *TokenSource
	tickets *TicketSource

	mu       sync.Mutex
	fetching *flight // the GET in flight, if any
	// After a fetch that failed, or answered a value too close to its end
	// to cache, misses until holdUntil do not ask again at once: a failure
	// is answered with holdErr, and a fetch waits for holdUntil, so that
	// callers in a loop cannot turn a server's bad second into a stream of
	// requests.
	holdUntil time.Time
	holdErr   error
	reports   map[string]*flight // reports in flight, by the token reported
	timer     *time.Timer
	failures  int // background fetches failed in a row
	stopped   bool
}

// TokenSource is the cached access token of one credential. Its methods
// are safe for concurrent use.
type TokenSource struct{ s *source }

// Token returns the credential's access token: the cached one while the
// server's expires_in lasts, else one fetched from the server. However
// many callers miss together, one request is made; a caller whose ctx ends
// stops waiting without cancelling that request for the others. A token
// read since it was fetched is replaced in the background before it runs
// out; one nobody read is left to expire, and the next read fetches.
func (t *TokenSource) Token(ctx context.Context) (string, error) { return t.s.get(ctx) }

// Invalidate reports a token that WeChat refused (errcode 40001, 42001 or
// 40014) and returns the token to use now, which is also cached. A token
// that is no longer the cached one was replaced already: the cached one is
// returned without asking the server. Reports of the same token made
// together share one request.
func (t *TokenSource) Invalidate(ctx context.Context, token string) (string, error) {
	return t.s.invalidate(ctx, token)
}

// ID is the credential id the source serves.
func (t *TokenSource) ID() string { return t.s.id }

// TicketSource is the cached JS-SDK ticket of one type of one credential.
// Its methods are safe for concurrent use.
type TicketSource struct{ s *source }

// Ticket returns the ticket, cached and fetched as TokenSource.Token does.
func (t *TicketSource) Ticket(ctx context.Context) (string, error) { return t.s.get(ctx) }

// TokenSource returns the source of credential id's access token (id may
// be namespaced: "{platform}/{appid}"). The same id gives the same source.
func (c *Client) TokenSource(id string) *TokenSource {
	return c.source(id, "/v1/tokens/"+escapeID(id), id, false).tokens
}

// TicketSource returns the source of credential id's JS-SDK ticket of type
// typ ("jsapi", "wx_card", "agent_config"). The same pair gives the same
// source.
func (c *Client) TicketSource(id, typ string) *TicketSource {
	key := id + "/tickets/" + typ
	return c.source(key, "/v1/tokens/"+escapeID(id)+"/tickets/"+escapeID(typ), id, true).tickets
}

// sourceKey names a source: its id as watched ("{id}" or
// "{id}/tickets/{type}") and whether it is a ticket's, so that no token id
// can be taken for a ticket.
type sourceKey struct {
	key    string
	ticket bool
}

func (c *Client) source(key, path, id string, ticket bool) *source {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sources[sourceKey{key, ticket}]; s != nil {
		return s
	}
	s := &source{c: c, key: key, path: path, id: id, ticket: ticket, reports: map[string]*flight{}}
	s.tokens, s.tickets = &TokenSource{s}, &TicketSource{s}
	c.sources[sourceKey{key, ticket}] = s
	if c.watch && !c.closed {
		c.startWatchLocked()
	}
	return s
}

// get is the read path: an atomic load while a value is cached.
func (s *source) get(ctx context.Context) (string, error) {
	if e := s.cur.Load(); e != nil {
		if !e.used.Load() {
			e.used.Store(true)
		}
		return e.value, nil
	}
	s.mu.Lock()
	if s.holdErr != nil && time.Now().Before(s.holdUntil) {
		err := s.holdErr
		s.mu.Unlock()
		return "", err
	}
	f := s.fetchLocked()
	s.mu.Unlock()
	v, err := wait(ctx, f)
	if err == nil {
		if e := s.cur.Load(); e != nil && e.value == v {
			e.used.Store(true)
		}
	}
	return v, err
}

func wait(ctx context.Context, f *flight) (string, error) {
	select {
	case <-f.done:
		return f.value, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// reply is the server's answer for a token or a ticket.
type reply struct {
	AccessToken string `json:"access_token"`
	Ticket      string `json:"ticket"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (r *reply) value(ticket bool) string {
	if ticket {
		return r.Ticket
	}
	return r.AccessToken
}

// fetchLocked returns the GET in flight, starting one if there is none.
// The caller holds s.mu.
func (s *source) fetchLocked() *flight {
	if s.fetching != nil {
		return s.fetching
	}
	f := &flight{done: make(chan struct{})}
	s.fetching = f
	if !s.c.goOwned(func() { s.runFetch(f) }) {
		s.fetching = nil
		f.err = ErrClosed
		close(f.done)
	}
	return f
}

func (s *source) runFetch(f *flight) {
	defer func() {
		s.mu.Lock()
		s.fetching = nil
		s.holdUntil, s.holdErr = time.Time{}, nil
		switch {
		case f.err != nil:
			s.holdUntil, s.holdErr = time.Now().Add(missHold), f.err
			s.retryLocked()
		case s.cur.Load() == nil:
			s.holdUntil = time.Now().Add(missHold) // answered, not cached
		default:
			s.failures = 0
		}
		s.mu.Unlock()
		close(f.done)
	}()
	f.err = fmt.Errorf("wxtoken client: fetching %s: panic", s.key) // until it returns
	s.mu.Lock()
	hold := time.Until(s.holdUntil)
	s.mu.Unlock()
	if hold > 0 && !sleepCtx(s.c.ctx, hold) {
		f.err = ErrClosed
		return
	}
	ctx, cancel := context.WithTimeout(s.c.ctx, s.c.timeout)
	defer cancel()
	start := time.Now()
	var r reply
	if err := s.c.call(ctx, "GET", s.path, nil, &r); err != nil {
		f.err = err
		return
	}
	f.value, f.err = s.accept(&r, start, false)
}

// accept checks an answer, caches it and returns its value.
func (s *source) accept(r *reply, start time.Time, force bool) (string, error) {
	v := r.value(s.ticket)
	if v == "" {
		return "", fmt.Errorf("wxtoken: %s: answer without a value", s.key)
	}
	s.store(v, r.ExpiresIn, start, force)
	return v, nil
}

// store caches value for expiresIn seconds counted from start, a moment
// no later than the server's answer, so the deadline is never late. A
// value that would not outlive the deadline of a different cached one is
// not taken, unless force (a report's answer, which is the server's word
// on the current token).
func (s *source) store(value string, expiresIn int64, start time.Time, force bool) {
	life := time.Duration(expiresIn) * time.Second
	e := &entry{value: value, deadline: start.Add(life)}
	e.refresh = start.Add(max(s.c.jitter(time.Duration(float64(life)*refreshAt), refreshJitter), minRefresh))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	old := s.cur.Load()
	if !force && old != nil && old.value != value && old.deadline.After(e.deadline) {
		return
	}
	if life <= 0 {
		if old != nil && (force || old.value == value) {
			s.cur.Store(nil)
		}
		return
	}
	s.cur.Store(e)
	s.scheduleLocked(e.refresh)
}

// drop forgets the cached value, if it is still v ("" for any), so that
// the next caller fetches.
func (s *source) drop(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur.Load(); e != nil && (v == "" || e.value == v) {
		s.cur.Store(nil)
	}
}

// scheduleLocked sets the source's one timer to at. The caller holds s.mu.
func (s *source) scheduleLocked(at time.Time) {
	if s.stopped {
		return
	}
	d := time.Until(at)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.tick)
		return
	}
	s.timer.Reset(d)
}

// retryLocked plans the next background attempt after a failed fetch:
// exponential from one second, capped by maxRetry and by the cached
// value's deadline. The caller holds s.mu.
func (s *source) retryLocked() {
	e := s.cur.Load()
	if e == nil {
		return
	}
	s.failures++
	d := min(time.Second<<min(s.failures-1, 10), maxRetry)
	at := time.Now().Add(s.c.jitter(d, 0.2))
	if at.After(e.deadline) {
		at = e.deadline
	}
	s.scheduleLocked(at)
}

// tick runs when the cached value's refresh time or deadline comes: it
// drops an expired value and starts the background fetch of a used one.
func (s *source) tick() {
	if !s.c.enter() {
		return
	}
	defer s.c.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			s.c.log.Error("wxtoken client: panic in refresh timer", "source", s.key, "panic", p)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.cur.Load()
	if s.stopped || e == nil {
		return
	}
	now := time.Now()
	switch {
	case !now.Before(e.deadline):
		s.cur.Store(nil)
	case now.Before(e.refresh):
		s.scheduleLocked(e.refresh)
	default:
		// While the watch stream is up, the server's event brings the
		// next value; a fetch now would most likely answer this one.
		if e.used.Load() && s.fetching == nil && !s.c.streaming.Load() {
			s.fetchLocked()
		}
		// Whatever the fetch does, the value is not served past its
		// deadline; a success reschedules first.
		s.scheduleLocked(e.deadline)
	}
}

// stop ends the source's timer and forgets its value: with no timer left
// to drop it at its deadline, a value kept would be served past it.
func (s *source) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.cur.Store(nil)
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *source) invalidate(ctx context.Context, stale string) (string, error) {
	if s.ticket {
		return "", fmt.Errorf("wxtoken client: %s: tickets are not reported", s.key)
	}
	if e := s.cur.Load(); e != nil && e.value != stale {
		return e.value, nil
	}
	s.mu.Lock()
	f := s.reports[stale]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.reports[stale] = f
		if !s.c.goOwned(func() { s.runReport(f, stale) }) {
			delete(s.reports, stale)
			f.err = ErrClosed
			close(f.done)
		}
	}
	s.mu.Unlock()
	return wait(ctx, f)
}

func (s *source) runReport(f *flight, stale string) {
	defer func() {
		s.mu.Lock()
		delete(s.reports, stale)
		s.mu.Unlock()
		close(f.done)
	}()
	f.err = fmt.Errorf("wxtoken client: reporting %s: panic", s.key)
	ctx, cancel := context.WithTimeout(s.c.ctx, s.c.timeout)
	defer cancel()
	start := time.Now()
	var r reply
	body := struct {
		AccessToken string `json:"access_token"`
	}{stale}
	if err := s.c.call(ctx, "POST", s.path+"/invalidate", body, &r); err != nil {
		f.err = err
		return
	}
	f.value, f.err = s.accept(&r, start, true)
}
