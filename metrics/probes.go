package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/wechat"
)

// Probes are what the collector asks, at each scrape, of what wxtoken
// depends on. Each may be nil.
type Probes struct {
	// Store reads the store once: nil when it answers.
	Store func(ctx context.Context) error
	// Upstreams are WeChat's hosts and their health.
	Upstreams func() []wechat.UpstreamStatus
	// Tickets are when each platform's component_verify_ticket arrived
	// (zero: none stored), by credential id.
	Tickets func(ctx context.Context) map[string]time.Time
}

// probeTimeout bounds the probes of one scrape.
const probeTimeout = 2 * time.Second

var (
	descStoreUp = prometheus.NewDesc("wxtoken_store_up",
		"1 if the store (the embedded file, or Redis) answered a read at the scrape, else 0.", nil, nil)
	descUpstreamHealthy = prometheus.NewDesc("wxtoken_upstream_healthy",
		"1 if WeChat's host answered its last health check or call without a 5xx, else 0.", []string{"url"}, nil)
	descUpstreamActive = prometheus.NewDesc("wxtoken_upstream_active",
		"1 for the host calls go to now.", []string{"url"}, nil)
	descUpstreamFailovers = prometheus.NewDesc("wxtoken_upstream_failovers_total",
		"Times calls moved off this host because it could not be reached.", []string{"url"}, nil)
	descTicketAge = prometheus.NewDesc("wxtoken_component_ticket_age_seconds",
		"Seconds since the platform's component_verify_ticket arrived (WeChat pushes one every 10 minutes); -1 if none is stored.", []string{"credential"}, nil)
)

// WithProbes adds probes to the collector.
func (c *Collector) WithProbes(p Probes) *Collector {
	c.probes = p
	return c
}

// collectProbes reports the probes.
func (c *Collector) collectProbes(ch chan<- prometheus.Metric, now time.Time) {
	p := c.probes
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if p.Store != nil {
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, b2f(p.Store(ctx) == nil))
	}
	if p.Upstreams != nil {
		for _, u := range p.Upstreams() {
			ch <- prometheus.MustNewConstMetric(descUpstreamHealthy, prometheus.GaugeValue, b2f(u.Healthy), u.URL)
			ch <- prometheus.MustNewConstMetric(descUpstreamActive, prometheus.GaugeValue, b2f(u.Active), u.URL)
			ch <- prometheus.MustNewConstMetric(descUpstreamFailovers, prometheus.CounterValue, float64(u.Failovers), u.URL)
		}
	}
	if p.Tickets != nil {
		for id, at := range p.Tickets(ctx) {
			age := -1.0
			if !at.IsZero() {
				age = now.Sub(at).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descTicketAge, prometheus.GaugeValue, age, id)
		}
	}
}
