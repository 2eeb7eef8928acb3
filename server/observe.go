package server

import (
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// Observer is told what the API does: the requests to each route, by
// client and status; the token reads, by client and credential; the watch
// streams and their events. Package metrics implements it.
//
// The server asks Route and TokenReads once per pair and keeps what they
// return (on the client it authenticated), so that a request costs the
// implementation's Observe and Inc, not a lookup by label values.
type Observer interface {
	// Route returns the observer of the requests to route (a pattern such
	// as "GET /v1/tokens/{id}", or RouteUnmatched) from client (its
	// configured name, "" for a request that authenticated none).
	Route(route, client string) RouteObserver
	// TokenReads returns the counter of client's token reads of
	// credential: a configured credential's id, or "{platform}/*" for all
	// of a platform's authorizers, so that their number does not add
	// series.
	TokenReads(client, credential string) Counter
	// WatchStreams is told of a watch stream opened (+1) or ended (-1).
	WatchStreams(delta int)
	// WatchEvent is told of an event published to the watch streams. It
	// is called with a credential locked, and must not block.
	WatchEvent()
}

// RouteObserver observes the requests to one route from one client.
type RouteObserver interface {
	// Observe is told of one request: the status it was answered with,
	// and how long it took (for a watch stream, how long it was open).
	Observe(status int, d time.Duration)
}

// Counter counts.
type Counter interface{ Inc() }

// RouteUnmatched is the route of a request that no route took (404, 405).
const RouteUnmatched = "unmatched"

// observed is what a client, or the absence of one, keeps for the
// Observer.
type observed struct {
	routes []RouteObserver // by route index
	// ids and owners hold the token-read counters by credential and by
	// platform. Each map is replaced whole when a counter is added, so a
	// read looks one up without a lock, and without the allocation a
	// string key into a sync.Map costs.
	ids, owners atomic.Pointer[map[string]Counter]
	mu          sync.Mutex // held to add a counter
}

// counter returns the counter of key in m, made by mk the first time.
func (o *observed) counter(m *atomic.Pointer[map[string]Counter], key string, mk func() Counter) Counter {
	if p := m.Load(); p != nil {
		if c, ok := (*p)[key]; ok {
			return c
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var next map[string]Counter
	if p := m.Load(); p != nil {
		if c, ok := (*p)[key]; ok {
			return c
		}
		next = maps.Clone(*p)
	} else {
		next = map[string]Counter{}
	}
	c := mk()
	next[key] = c
	m.Store(&next)
	return c
}

// observeRoutes resolves every route's observer for every client and for
// none; patterns are the routes in index order.
func (s *Server) observeRoutes(patterns []string) {
	s.patterns = patterns
	s.anon = &client{}
	s.observed(s.anon)
	for _, c := range *s.clients.p.Load() {
		s.observed(c)
	}
}

// observed returns what c keeps for the Observer, resolved the first
// time: New resolves it for the clients it is given, and a client made
// later is resolved at its first request.
func (s *Server) observed(c *client) *observed {
	if o := c.obs.Load(); o != nil {
		return o
	}
	o := &observed{routes: make([]RouteObserver, len(s.patterns))}
	for i, p := range s.patterns {
		o.routes[i] = s.obs.Route(p, c.name)
	}
	if c.obs.CompareAndSwap(nil, o) {
		return o
	}
	return c.obs.Load()
}

// observe wraps h, the handler of route index route, to report each
// request to the Observer.
func (s *Server) observe(route int, h http.Handler) http.Handler {
	if s.obs == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		// The handler authenticated the request already, if its route
		// takes a key; asking again costs a hash, off the hot path.
		c, _ := s.clients.authenticate(r)
		if c == nil {
			c = s.anon
		}
		s.observed(c).routes[route].Observe(sw.status(), time.Since(start))
	})
}

// observeHot reports a request routed by the hot path: status is its
// answer's, c its client (nil: none).
func (s *Server) observeHot(c *client, id string, status int, start time.Time) {
	if c == nil {
		c = s.anon
	}
	route := s.hot.routeID
	if strings.IndexByte(id, '/') >= 0 {
		route = s.hot.routeNS
	}
	s.observed(c).routes[route].Observe(status, time.Since(start))
}

// countRead counts c's read of snap's token. A platform's authorizers, and
// the credentials in a platform's namespace (their tickets), are counted
// as one, "{platform}/*".
func (s *Server) countRead(c *client, snap *token.Snapshot) {
	if s.obs == nil {
		return
	}
	key, owned := snap.ID, snap.Owner != ""
	if owned {
		key = snap.Owner
	} else if ns, _, ok := strings.Cut(snap.ID, "/"); ok {
		if _, platform := s.platforms[ns]; platform {
			key, owned = ns, true
		}
	}
	o := s.observed(c)
	if owned {
		o.counter(&o.owners, key, func() Counter { return s.obs.TokenReads(c.name, key+"/*") }).Inc()
		return
	}
	o.counter(&o.ids, key, func() Counter { return s.obs.TokenReads(c.name, key) }).Inc()
}

// statusWriter records the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (watch streams
// flush and set deadlines, the proxy flushes).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the answer's status: 200 if the handler wrote nothing, as
// net/http then answers.
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
