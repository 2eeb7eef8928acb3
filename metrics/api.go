package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/server"
)

// API counts the HTTP API's requests, token reads and watch streams. It
// is a server.Observer.
//
// Its labels are bounded: routes are patterns, never paths; clients are
// the configured ones; statuses are the few the API answers with, any
// other folded into its class ("2xx" … "5xx"); token reads are counted
// per configured credential, and per platform for all its authorizers.
type API struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reads    *prometheus.CounterVec
	streams  prometheus.Gauge
	events   prometheus.Counter
}

var _ server.Observer = (*API)(nil)

// NewAPI registers the API's metrics with reg.
func NewAPI(reg prometheus.Registerer) *API {
	a := &API{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_api_requests_total",
			Help: "API requests by route (its pattern, or unmatched), status and client (its configured name; empty without a valid key).",
		}, []string{"route", "status", "client"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxtoken_api_request_duration_seconds",
			Help:    "How long API requests took to answer, by route; a watch stream's is how long it was open.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_token_reads_total",
			Help: "Tokens served by GET /v1/tokens, by client and credential ({platform}/* for all of a platform's authorizers).",
		}, []string{"client", "credential"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wxtoken_watch_streams",
			Help: "Watch streams (GET /v1/watch) open now.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wxtoken_watch_events_total",
			Help: "Changes of a token or ticket published to the watch streams.",
		}),
	}
	reg.MustRegister(a.requests, a.duration, a.reads, a.streams, a.events)
	return a
}

// statuses are the statuses the API answers with, each with a label of
// its own; statusIndex maps a status to its index here, or to its class
// beyond them.
var statuses = [...]int{200, 202, 204, 400, 401, 403, 404, 405, 408, 409, 410, 413, 429, 500, 502, 503, 504}

// statusLabels are the status label values, by index: the statuses, then
// the classes 1xx…5xx, then "other" for a status out of range.
var statusLabels = func() []string {
	var out []string
	for _, s := range statuses {
		out = append(out, strconv.Itoa(s))
	}
	return append(out, "1xx", "2xx", "3xx", "4xx", "5xx", "other")
}()

var statusTable = func() (t [600]uint8) {
	for i := range t {
		t[i] = uint8(len(statuses) + 5) // other
		if i >= 100 {
			t[i] = uint8(len(statuses) + i/100 - 1)
		}
	}
	for i, s := range statuses {
		t[s] = uint8(i)
	}
	return t
}()

func statusIndex(code int) int {
	if code < 0 || code >= len(statusTable) {
		return len(statusLabels) - 1
	}
	return int(statusTable[code])
}

// Route implements server.Observer.
func (a *API) Route(route, client string) server.RouteObserver {
	return &routeObserver{api: a, route: route, client: client}
}

// routeObserver holds one route's and one client's series, each made at
// its first request: a pair that is never asked adds no series.
type routeObserver struct {
	api           *API
	route, client string
	duration      atomic.Pointer[prometheus.Observer]
	counts        [len(statuses) + 6]atomic.Pointer[prometheus.Counter]
}

// Observe implements server.RouteObserver.
func (o *routeObserver) Observe(status int, d time.Duration) {
	i := statusIndex(status)
	c := o.counts[i].Load()
	if c == nil {
		v := o.api.requests.WithLabelValues(o.route, statusLabels[i], o.client)
		c = &v
		o.counts[i].Store(c)
	}
	(*c).Inc()
	h := o.duration.Load()
	if h == nil {
		v := o.api.duration.WithLabelValues(o.route)
		h = &v
		o.duration.Store(h)
	}
	(*h).Observe(d.Seconds())
}

// TokenReads implements server.Observer.
func (a *API) TokenReads(client, credential string) server.Counter {
	return a.reads.WithLabelValues(client, credential)
}

// WatchStreams implements server.Observer.
func (a *API) WatchStreams(delta int) { a.streams.Add(float64(delta)) }

// WatchEvent implements server.Observer.
func (a *API) WatchEvent() { a.events.Inc() }
