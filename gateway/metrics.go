package gateway

import "github.com/prometheus/client_golang/prometheus"

// counters are the gateway's metrics, by outcome; labels are bounded by
// the configuration (credentials and rule names), never by messages.
type counters struct {
	received   *prometheus.CounterVec // credential, result: queued, duplicate, refused
	deliveries *prometheus.CounterVec // credential, rule, result: ok, retry, dead
	replies    *prometheus.CounterVec // credential, result: reply, none, cached
}

func newCounters(reg prometheus.Registerer) *counters {
	c := &counters{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_gateway_messages_total",
			Help: "Messages WeChat pushed to a forwarding callback: queued, duplicate (a retry within the dedup window) or refused (not stored).",
		}, []string{"credential", "result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_gateway_deliveries_total",
			Help: "Delivery attempts of queued messages: ok (acknowledged), retry (to be tried again) or dead (moved to the dead letters).",
		}, []string{"credential", "rule", "result"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxtoken_gateway_replies_total",
			Help: "Answers of reply rules: reply (passed to WeChat), none (success) or cached (a retry answered from the reply given).",
		}, []string{"credential", "result"}),
	}
	if reg != nil {
		reg.MustRegister(c.received, c.deliveries, c.replies)
	}
	return c
}
