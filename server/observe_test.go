package server

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	requests map[string]int // "route|status|client"
	reads    map[string]int // "client|credential"
	resolved map[string]int // Route and TokenReads calls, by pair
	streams  int
	events   int
}

func newRecorder() *recorder {
	return &recorder{requests: map[string]int{}, reads: map[string]int{}, resolved: map[string]int{}}
}

func (r *recorder) Route(route, client string) RouteObserver {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolved["route "+route+"|"+client]++
	return routeRecorder{r, route, client}
}

func (r *recorder) TokenReads(client, credential string) Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolved["reads "+client+"|"+credential]++
	return readRecorder{r, client + "|" + credential}
}

func (r *recorder) WatchStreams(delta int) { r.mu.Lock(); r.streams += delta; r.mu.Unlock() }
func (r *recorder) WatchEvent()            { r.mu.Lock(); r.events++; r.mu.Unlock() }

// take returns the requests and reads observed since the last take.
func (r *recorder) take() (requests, reads map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	requests, reads = r.requests, r.reads
	r.requests, r.reads = map[string]int{}, map[string]int{}
	return requests, reads
}

type routeRecorder struct {
	r             *recorder
	route, client string
}

func (o routeRecorder) Observe(status int, d time.Duration) {
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	o.r.requests[fmt.Sprintf("%s|%d|%s", o.route, status, o.client)]++
}

type readRecorder struct {
	r   *recorder
	key string
}

func (c readRecorder) Inc() { c.r.mu.Lock(); c.r.reads[c.key]++; c.r.mu.Unlock() }

// TestObserverRequests: each request is observed once, by its route's
// pattern (never its path), its status and its client ("" without a valid
// key), whether the hot path or the mux routes it; token reads are counted
// by client and credential.
func TestObserverRequests(t *testing.T) {
	rec := newRecorder()
	api, _, _ := hotAPIObserved(t, rec, "shop", "hr")
	rec.take()
	tests := []struct {
		method, target, key string
		request, read       string // want observed; read "" for none
	}{
		{"GET", "/v1/tokens/shop", shopKey, "GET /v1/tokens/{id}|200|shop", "shop|shop"},
		{"GET", "/v1/tokens/hr", opsKey, "GET /v1/tokens/{id}|200|ops", "ops|hr"},
		{"GET", "/v1/tokens/hr", shopKey, "GET /v1/tokens/{id}|403|shop", ""},
		{"GET", "/v1/tokens/shop", "", "GET /v1/tokens/{id}|401|", ""},
		{"GET", "/v1/tokens/shop", "not-a-key-0123456789", "GET /v1/tokens/{id}|401|", ""},
		{"GET", "/v1/tokens/nope", opsKey, "GET /v1/tokens/{id}|404|ops", ""},
		{"GET", "/v1/tokens/plat/wxa", opsKey, "GET /v1/tokens/{ns}/{id}|404|ops", ""},
		{"GET", "/v1/tokens/a%2Fb", opsKey, "GET /v1/tokens/{id}|404|ops", ""},
		{"GET", "/v1/tokens", opsKey, "GET /v1/tokens|200|ops", ""},
		{"GET", "/healthz", "", "GET /healthz|200|", ""},
		{"GET", "/nowhere/at/all", "", "unmatched|404|", ""},
		{"DELETE", "/v1/tokens/shop", opsKey, "unmatched|405|ops", ""},
		{"POST", "/v1/tokens/shop/invalidate", opsKey, "POST /v1/tokens/{id}/invalidate|400|ops", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			// Through ServeHTTP (the hot path, where it applies) and
			// through the mux alone: both observe the same.
			for _, h := range []http.Handler{api, api.mux} {
				r := httptest.NewRequest(tt.method, tt.target, nil)
				if tt.key != "" {
					r.Header.Set("Authorization", "Bearer "+tt.key)
				}
				h.ServeHTTP(httptest.NewRecorder(), r)
				requests, reads := rec.take()
				if want := map[string]int{tt.request: 1}; !maps.Equal(requests, want) {
					t.Errorf("requests observed: got %v, want %v", requests, want)
				}
				want := map[string]int{}
				if tt.read != "" {
					want[tt.read] = 1
				}
				if !maps.Equal(reads, want) {
					t.Errorf("reads observed: got %v, want %v", reads, want)
				}
			}
		})
	}
	// Each pair was resolved once, however often it was asked.
	for pair, n := range rec.resolved {
		if n != 1 {
			t.Errorf("%s resolved %d times, want once", pair, n)
		}
	}
}

// TestObserverLateClient: a client that did not exist when the server
// was made (one added at run time) is observed from its first request.
func TestObserverLateClient(t *testing.T) {
	rec := newRecorder()
	api, _, _ := hotAPIObserved(t, rec, "shop")
	const lateKey = "late-key-0123456789"
	api.SetClients([]Client{{Name: "late", KeyHash: sha256.Sum256([]byte(lateKey)), Allow: []string{"*"}}})
	rec.take()
	for _, h := range []http.Handler{api, api.mux} {
		r := httptest.NewRequest("GET", "/v1/tokens/shop", nil)
		r.Header.Set("Authorization", "Bearer "+lateKey)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	requests, reads := rec.take()
	if want := map[string]int{"GET /v1/tokens/{id}|200|late": 2}; !maps.Equal(requests, want) {
		t.Errorf("requests observed: got %v, want %v", requests, want)
	}
	if want := map[string]int{"late|shop": 2}; !maps.Equal(reads, want) {
		t.Errorf("reads observed: got %v, want %v", reads, want)
	}
}

// TestObserverReadsAggregated: a platform's authorizers, and what lies
// in its namespace, are counted as one credential, "{platform}/*".
func TestObserverReadsAggregated(t *testing.T) {
	rec := newRecorder()
	api, _, _ := hotAPIObserved(t, rec, "shop")
	api.platforms = map[string]Platform{"plat": nil}
	c := api.anon
	for i := range 100 {
		appid := fmt.Sprintf("wx%03d", i)
		api.countRead(c, &token.Snapshot{ID: "plat/" + appid, Owner: "plat"})
		api.countRead(c, &token.Snapshot{ID: "plat/" + appid + "/tickets/jsapi"})
	}
	api.countRead(c, &token.Snapshot{ID: "plat"})
	api.countRead(c, &token.Snapshot{ID: "team/shop"}) // a namespace, not a platform
	_, reads := rec.take()
	if want := map[string]int{"|plat/*": 200, "|plat": 1, "|team/shop": 1}; !maps.Equal(reads, want) {
		t.Errorf("reads: got %v, want %v", reads, want)
	}
}

// TestObserverWatch: watch streams are counted while open, and events as
// they are published.
func TestObserverWatch(t *testing.T) {
	rec := newRecorder()
	h := newWatchHub(0, 2, rec)
	for i, want := range []bool{true, true, false} {
		if got := h.acquire("a"); got != want {
			t.Fatalf("acquire %d: %v, want %v (two streams, then a refusal)", i+1, got, want)
		}
	}
	h.publish(&token.Snapshot{ID: "shop"})
	rec.mu.Lock()
	streams, events := rec.streams, rec.events
	rec.mu.Unlock()
	if streams != 2 || events != 1 {
		t.Errorf("streams %d, events %d; want 2, 1", streams, events)
	}
	h.release("a")
	h.release("a")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.streams != 0 {
		t.Errorf("streams after release: %d, want 0", rec.streams)
	}
}

// BenchmarkGetTokenObserved is BenchmarkGetToken with an Observer that
// does nothing: the cost the server adds to observe a request.
func BenchmarkGetTokenObserved(b *testing.B) {
	api, _, _ := hotAPIObserved(b, nopObserver{}, "shop")
	w := &sink{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/v1/tokens/shop", nil)
	r.Header["Authorization"] = []string{"Bearer " + opsKey}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		api.ServeHTTP(w, r)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

type nopObserver struct{}

func (nopObserver) Route(string, string) RouteObserver { return nopObserver{} }
func (nopObserver) TokenReads(string, string) Counter  { return nopObserver{} }
func (nopObserver) WatchStreams(int)                   {}
func (nopObserver) WatchEvent()                        {}
func (nopObserver) Observe(int, time.Duration)         {}
func (nopObserver) Inc()                               {}
