package metrics

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestAPIStatuses: each status the API answers with has a label of its
// own, any other its class, so the label's values are few.
func TestAPIStatuses(t *testing.T) {
	for _, tt := range []struct {
		code int
		want string
	}{
		{200, "200"}, {401, "401"}, {404, "404"}, {503, "503"},
		{201, "2xx"}, {302, "3xx"}, {418, "4xx"}, {599, "5xx"}, {101, "1xx"},
		{0, "other"}, {99, "other"}, {600, "other"}, {-1, "other"}, {1 << 20, "other"},
	} {
		if got := statusLabels[statusIndex(tt.code)]; got != tt.want {
			t.Errorf("status %d: label %q, want %q", tt.code, got, tt.want)
		}
	}
}

// TestAPISeries: a route and client's series exist once asked, counted by
// status, and a pair never observed adds no series.
func TestAPISeries(t *testing.T) {
	a := NewAPI(prometheus.NewRegistry())
	ok := a.Route("GET /v1/tokens/{id}", "shop")
	a.Route("GET /v1/tokens/{id}", "ops") // resolved, never observed
	anon := a.Route("GET /v1/tokens/{id}", "")
	for range 3 {
		ok.Observe(200, time.Millisecond)
	}
	anon.Observe(401, time.Microsecond)
	anon.Observe(418, time.Microsecond)
	for _, tt := range []struct {
		status, client string
		want           float64
	}{
		{"200", "shop", 3}, {"401", "", 1}, {"4xx", "", 1},
	} {
		if got := counterValue(a.requests.WithLabelValues("GET /v1/tokens/{id}", tt.status, tt.client)); got != tt.want {
			t.Errorf("requests %s %q: %v, want %v", tt.status, tt.client, got, tt.want)
		}
	}
	// The three asked above, and nothing for ops.
	if n := series(a.requests); n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
	if n := series(a.duration); n != 1 {
		t.Errorf("%d duration series, want 1 (one route)", n)
	}
	a.TokenReads("shop", "shop").Inc()
	if got := counterValue(a.reads.WithLabelValues("shop", "shop")); got != 1 {
		t.Errorf("token reads: %v, want 1", got)
	}
	a.WatchStreams(1)
	a.WatchStreams(1)
	a.WatchStreams(-1)
	a.WatchEvent()
	if g, e := gaugeValue(a.streams), counterValue(a.events); g != 1 || e != 1 {
		t.Errorf("watch streams %v, events %v; want 1, 1", g, e)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}

// BenchmarkGetToken is GET /v1/tokens/{id} through the whole API, with
// the API's metrics and without: what counting a request costs.
func BenchmarkGetToken(b *testing.B) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp("wxshop", "secret")
	up := &wechat.Client{HTTP: fake.Client(), API: "http://wechat"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := token.New(token.Config{Store: memory.New(), Logger: quiet},
		[]token.Credential{{ID: "shop", Kind: "mp", Source: &kind.ClassicSource{Client: up, AppID: "wxshop", Secret: "secret"}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	if _, err := m.Await(b.Context(), "shop"); err != nil {
		b.Fatal(err)
	}
	const key = "bench-key-0123456789"
	clients := []server.Client{{Name: "bench", KeyHash: sha256.Sum256([]byte(key)), Allow: []string{"*"}}}
	for _, tt := range []struct {
		name string
		obs  server.Observer
	}{{"off", nil}, {"on", NewAPI(prometheus.NewRegistry())}} {
		b.Run(tt.name, func(b *testing.B) {
			api, err := server.New(server.Config{Tokens: m, Logger: quiet, Clients: clients, Observer: tt.obs})
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/v1/tokens/shop", nil)
			r.Header["Authorization"] = []string{"Bearer " + key}
			w := &sink{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.status = 0
				api.ServeHTTP(w, r)
				if w.status != 0 && w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// sink is a ResponseWriter that keeps nothing, reused as net/http reuses
// its own per connection.
type sink struct {
	h      http.Header
	status int
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) WriteHeader(code int)        { s.status = code }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
