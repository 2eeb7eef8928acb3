package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMethodNotAllowed: a known path asked with another method answers
// 405 in the error shape, with Allow listing the methods it takes, and
// changes nothing; an unknown path is still 404.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path, allow string
	}{
		{"DELETE", "/v1/tokens/shop", "GET, HEAD"},
		{"POST", "/v1/tokens/shop", "GET, HEAD"},
		{"GET", "/v1/tokens/shop/invalidate", "POST"},
		{"PUT", "/v1/tokens", "GET, HEAD"},
		{"POST", "/v1/upstreams", "GET, HEAD"},
		{"GET", "/v1/components/plat/preauthcode", "POST"},
		{"DELETE", "/v1/components/plat/authorizers", "GET, HEAD, POST"},
		{"PUT", "/callback/mp/x", "GET, HEAD, POST"},
		{"GET", "/callback/component/x", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"DELETE", "/readyz", "GET, HEAD"},
		{"POST", "/", "GET, HEAD"},
	}
	before := e.fake.Stats("shop").ClassicCalls
	snap, _ := e.m.Token("shop")
	for _, tt := range tests {
		r := e.do(t, tt.method, tt.path, opsKey, `{"access_token":"x"}`)
		var body struct {
			Error apiError `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Errorf("%s %s: body %q is not the error shape: %v", tt.method, tt.path, r.body, err)
			continue
		}
		if r.status != 405 || body.Error.Code != "method_not_allowed" || r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d Allow %q %s; want 405 method_not_allowed, Allow %q", tt.method, tt.path, r.status, r.header.Get("Allow"), r.body, tt.allow)
		}
	}
	for _, path := range []string{"/v2/whatever", "/v1/tokens/shop/other", "/index.html"} {
		if r := e.do(t, "GET", path, opsKey, ""); r.status != 404 || !strings.Contains(r.body, `"not_found"`) {
			t.Errorf("GET %s = %d %s; want 404 not_found", path, r.status, r.body)
		}
	}
	if calls := e.fake.Stats("shop").ClassicCalls; calls != before {
		t.Errorf("wrong methods made %d fetches, want 0", calls-before)
	}
	if now, _ := e.m.Token("shop"); now.Token != snap.Token {
		t.Error("wrong methods changed the token")
	}
}

// TestIndex: GET / lists the endpoints, to anyone, with neither secrets
// nor credential ids.
func TestIndex(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/", "", "")
	var index struct {
		Endpoints []struct {
			Method, Path, About string
			ClientKey           bool `json:"client_key"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(r.body), &index); err != nil || r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET / = %d %v %s", r.status, err, r.body)
	}
	listed := map[string]bool{}
	for _, ep := range index.Endpoints {
		listed[ep.Method+" "+ep.Path] = ep.About != ""
		if want := strings.HasPrefix(ep.Path, "/v1/"); ep.ClientKey != want {
			t.Errorf("%s %s: client_key %v, want %v", ep.Method, ep.Path, ep.ClientKey, want)
		}
	}
	for _, want := range []string{"GET /v1/tokens/{id}", "POST /v1/tokens/{id}/invalidate", "GET /v1/tokens", "GET /v1/upstreams",
		"POST /v1/components/{id}/preauthcode", "GET /callback/mp/{id}", "POST /callback/component/{id}", "GET /healthz", "GET /readyz", "GET /"} {
		if !listed[want] {
			t.Errorf("index lacks %s, or its description: %s", want, r.body)
		}
	}
	snap, _ := e.m.Token("shop")
	for _, leak := range []string{"shop", "broken", `"hr"`, snap.Token, shopKey, opsKey} {
		if strings.Contains(r.body, leak) {
			t.Errorf("index contains %q", leak)
		}
	}
}
