package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/admin"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/gateway"
	"github.com/wxtoken/wxtoken/kind"
)

// startGateway starts the message gateway when a credential has forward
// rules, and hands it those credentials' pushes.
func (m *Main) startGateway(cfg *config.Config, set *kind.Set, reg prometheus.Registerer) error {
	routes := map[string][]gateway.Rule{}
	for _, cr := range cfg.Credentials {
		if cr.Callback == nil {
			continue
		}
		for _, f := range cr.Callback.Forward {
			routes[cr.ID] = append(routes[cr.ID], gateway.Rule{Forward: f})
		}
	}
	if len(routes) == 0 {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32 // one destination receives every lane's deliveries
	gw, err := gateway.New(gateway.Config{Store: m.store, Routes: routes, HTTP: &http.Client{Transport: tr},
		Logger: m.Logger, DedupWindow: cfg.Callbacks.DedupWindow, DeadAfter: cfg.Callbacks.DeadAfter,
		MaxBackoff: cfg.Callbacks.MaxBackoff, Registerer: reg})
	if err != nil {
		return err
	}
	m.gateway = gw
	for i := range set.Callbacks {
		if gw.Has(set.Callbacks[i].ID) {
			set.Callbacks[i].Messages = gw
		}
	}
	return nil
}

// deadLetters is the gateway's dead letters for the admin API; nil, not a
// nil *Gateway in an interface, without one.
func (m *Main) deadLetters() admin.DeadLetters {
	if m.gateway == nil {
		return nil
	}
	return m.gateway
}
