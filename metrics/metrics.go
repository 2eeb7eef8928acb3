// Package metrics exposes what wxtoken does to Prometheus: the fetches
// and reports as they happen (counters and a histogram, fed by the token
// manager as its token.Observer), and the state of every credential read
// when Prometheus scrapes (a collector over the manager's snapshots).
//
// Configured credentials get series of their own. Credentials created at
// run time (a platform's authorizers and their tickets) are aggregated per
// owner and kind, with the worst values exposed: a platform with 50,000
// authorizers adds a handful of series, not 50,000.
package metrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Metrics counts fetches and reports. It is a token.Observer.
type Metrics struct {
	fetches  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reports  *prometheus.CounterVec
}

var _ token.Observer = (*Metrics)(nil)

// New registers the fetch and report metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_fetches_total",
			Help: "Refreshes that called WeChat or failed, by kind, result (ok or the failure's class) and WeChat's errcode.",
		}, []string{"kind", "result", "errcode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxtoken_refresh_duration_seconds",
			Help:    "How long refreshes that called WeChat or failed took, by kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_reports_total",
			Help: "Reports of a dead token by callers, by kind and what came of them: replaced (already), live (WeChat still takes it), refreshed, or refused.",
		}, []string{"kind", "result"}),
	}
	reg.MustRegister(m.fetches, m.duration, m.reports)
	return m
}

// Refreshed implements token.Observer.
func (m *Metrics) Refreshed(kind, result string, errcode int, d time.Duration) {
	m.fetches.WithLabelValues(kind, result, strconv.Itoa(errcode)).Inc()
	m.duration.WithLabelValues(kind).Observe(d.Seconds())
}

// Reported implements token.Observer.
func (m *Metrics) Reported(kind, result string) {
	m.reports.WithLabelValues(kind, result).Inc()
}

// Tokens is what the collector reads of the token manager.
type Tokens interface {
	IDs() []string
	Snapshot(id string) (*token.Snapshot, error)
}

// Collector reports every credential's state at each scrape.
type Collector struct {
	tokens Tokens
	now    func() time.Time
}

// NewCollector returns a collector of tokens' state; register it.
func NewCollector(tokens Tokens) *Collector {
	return &Collector{tokens: tokens, now: time.Now}
}

var (
	credLabels  = []string{"credential", "kind"}
	ownedLabels = []string{"owner", "kind"}

	descValid = prometheus.NewDesc("wxtoken_credential_valid",
		"1 if the credential has a token that may be handed out now, else 0.", credLabels, nil)
	descExpires = prometheus.NewDesc("wxtoken_credential_expires_in_seconds",
		"Seconds until the credential's token expires at WeChat (0 without a token).", credLabels, nil)
	descNext = prometheus.NewDesc("wxtoken_credential_next_refresh_in_seconds",
		"Seconds until the credential's next planned refresh (negative: overdue).", credLabels, nil)
	descFetches = prometheus.NewDesc("wxtoken_credential_fetches_today",
		"Calls made to the credential's token endpoint this Beijing day (WeChat's daily quota counts them).", credLabels, nil)
	descFailures = prometheus.NewDesc("wxtoken_credential_failures",
		"Consecutive failed refreshes of the credential (0 after a success).", credLabels, nil)
	descRevoked = prometheus.NewDesc("wxtoken_credential_revoked",
		"1 if the account withdrew its authorization, else 0.", credLabels, nil)

	descOwned = prometheus.NewDesc("wxtoken_owned_credentials",
		"Credentials created at run time (authorizers, their tickets), by owner and kind.", ownedLabels, nil)
	descOwnedInvalid = prometheus.NewDesc("wxtoken_owned_invalid",
		"Of those, how many have no token that may be handed out now (revoked ones excluded).", ownedLabels, nil)
	descOwnedRevoked = prometheus.NewDesc("wxtoken_owned_revoked",
		"Of those, how many were revoked (authorization withdrawn).", ownedLabels, nil)
	descOwnedFailing = prometheus.NewDesc("wxtoken_owned_failing",
		"Of those, how many failed their last refresh.", ownedLabels, nil)
	descOwnedLost = prometheus.NewDesc("wxtoken_owned_authorization_lost",
		"Of those, how many WeChat refuses for good (61023: the refresh token is invalid; the account must authorize again).", ownedLabels, nil)
	descOwnedMinExpires = prometheus.NewDesc("wxtoken_owned_min_expires_in_seconds",
		"The least seconds until expiry among those with a token: the worst of them.", ownedLabels, nil)
	descOwnedMaxFetches = prometheus.NewDesc("wxtoken_owned_max_fetches_today",
		"The most calls made today for one of them: the nearest to its daily quota.", ownedLabels, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descValid, descExpires, descNext, descFetches, descFailures, descRevoked,
		descOwned, descOwnedInvalid, descOwnedRevoked, descOwnedFailing, descOwnedLost, descOwnedMinExpires, descOwnedMaxFetches} {
		ch <- d
	}
}

// owned is the aggregate of one owner's credentials of one kind.
type owned struct {
	n, invalid, revoked, failing, lost int
	minExpires                         float64
	withToken                          bool
	maxFetches                         int
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	ids := c.tokens.IDs()
	owners := map[string]bool{}
	var snaps []*token.Snapshot
	for _, id := range ids {
		s, err := c.tokens.Snapshot(id)
		if err != nil {
			continue
		}
		if s.Owner != "" {
			owners[s.Owner] = true
		}
		snaps = append(snaps, s)
	}
	groups := map[[2]string]*owned{}
	for _, s := range snaps {
		if owner := ownerOf(s, owners); owner != "" {
			key := [2]string{owner, s.Kind}
			g := groups[key]
			if g == nil {
				g = &owned{}
				groups[key] = g
			}
			g.add(s, now)
			continue
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.ID, s.Kind)
		}
		gauge(descValid, b2f(s.Valid(now)))
		gauge(descExpires, expiresIn(s, now))
		gauge(descNext, s.NextRefresh.Sub(now).Seconds())
		gauge(descFetches, float64(s.Fetches))
		gauge(descFailures, float64(failures(s)))
		gauge(descRevoked, b2f(s.Revoked))
	}
	for key, g := range groups {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, key[0], key[1])
		}
		gauge(descOwned, float64(g.n))
		gauge(descOwnedInvalid, float64(g.invalid))
		gauge(descOwnedRevoked, float64(g.revoked))
		gauge(descOwnedFailing, float64(g.failing))
		gauge(descOwnedLost, float64(g.lost))
		if g.withToken {
			gauge(descOwnedMinExpires, g.minExpires)
		}
		gauge(descOwnedMaxFetches, float64(g.maxFetches))
	}
}

// ownerOf is the owner s is aggregated under: its own, or, for a
// credential derived from an owned one (an authorizer's ticket,
// "{owner}/{appid}/tickets/jsapi"), its parent's, from its id's namespace.
func ownerOf(s *token.Snapshot, owners map[string]bool) string {
	if s.Owner != "" {
		return s.Owner
	}
	if ns, _, ok := strings.Cut(s.ID, "/"); ok && owners[ns] {
		return ns
	}
	return ""
}

func (g *owned) add(s *token.Snapshot, now time.Time) {
	g.n++
	switch {
	case s.Revoked:
		g.revoked++
	case !s.Valid(now):
		g.invalid++
	}
	if failures(s) > 0 {
		g.failing++
		if s.Cause.Class == wechat.Revoked.String() {
			g.lost++
		}
	}
	if s.Token != "" && !s.Revoked {
		if e := expiresIn(s, now); !g.withToken || e < g.minExpires {
			g.minExpires, g.withToken = e, true
		}
	}
	g.maxFetches = max(g.maxFetches, s.Fetches)
}

func expiresIn(s *token.Snapshot, now time.Time) float64 {
	if s.Token == "" {
		return 0
	}
	return s.ExpiresAt.Sub(now).Seconds()
}

func failures(s *token.Snapshot) int {
	if s.Cause == nil {
		return 0
	}
	return max(s.Cause.Failures, 1)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
