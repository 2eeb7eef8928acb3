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
	// Tickets are each platform's stored ticket, by credential id.
	Tickets func(ctx context.Context) map[string]Ticket
}

// Ticket is what a platform's stored ticket tells of WeChat's pushes.
type Ticket struct {
	// Kind is the platform's: component (component_verify_ticket,
	// lives 12 hours) or suite (suite_ticket, lives 30 minutes).
	Kind string
	// ReceivedAt is when it arrived; zero if none is stored.
	ReceivedAt time.Time
	// Usable: it can fetch the platform's token now.
	Usable bool
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
	descPlatformTicketAge = prometheus.NewDesc("wxtoken_platform_ticket_age_seconds",
		"Seconds since the platform's ticket arrived: a component's component_verify_ticket (lives 12 hours) or a WeCom suite's suite_ticket (lives 30 minutes, and no API asks for another); both are pushed every 10 minutes; -1 if none is stored.",
		[]string{"credential", "kind"}, nil)
	descPlatformTicketUsable = prometheus.NewDesc("wxtoken_platform_ticket_usable",
		"1 if the platform's stored ticket can fetch its token now; 0 if none is stored, it expired, or WeChat refused it.",
		[]string{"credential", "kind"}, nil)
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
		for id, t := range p.Tickets(ctx) {
			age := -1.0
			if !t.ReceivedAt.IsZero() {
				age = now.Sub(t.ReceivedAt).Seconds()
			}
			if t.Kind == "component" {
				ch <- prometheus.MustNewConstMetric(descTicketAge, prometheus.GaugeValue, age, id)
			}
			ch <- prometheus.MustNewConstMetric(descPlatformTicketAge, prometheus.GaugeValue, age, id, t.Kind)
			ch <- prometheus.MustNewConstMetric(descPlatformTicketUsable, prometheus.GaugeValue, b2f(t.Usable), id, t.Kind)
		}
	}
}
