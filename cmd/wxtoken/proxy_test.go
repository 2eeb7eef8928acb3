package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// TestProxy: /v1/proxy/{id}/<path> makes the call with the credential's
// token; a call that meets a token WeChat ended is made once more with a
// new one, one fetch however many calls met it; WeChat's own failures
// (-1, a 502) are answered as they came, with no retry and no report; and
// what must not go through is refused before WeChat is called.
func TestProxy(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	t.Cleanup(fake.Close)
	var busy, gateway atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/busy": // WeChat's own failure
			busy.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"errcode":-1,"errmsg":"system error"}`))
		case "/cgi-bin/gateway": // a gateway in front of it
			gateway.Add(1)
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default:
			fake.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	yaml := strings.NewReplacer("${WX1_SECRET}", "secret1", "${WX2_SECRET}", "secret2").Replace(configYAML(t.TempDir(), "127.0.0.1:0", srv.URL, time.Minute))
	addr := runYAML(t, yaml).Addr()
	getToken(t, addr, "wx1")

	call := func(method, path string) (int, string) {
		t.Helper()
		return keyCall(t, addr, method, path, clientKey, "")
	}
	if status, body := call("GET", "/v1/proxy/wx1/cgi-bin/getcallbackip"); status != 200 || !strings.Contains(body, `"ip_list"`) {
		t.Fatalf("proxied getcallbackip: %d %s", status, body)
	}

	// WeChat ends the token: twenty calls meet it at once.
	fetches := fake.Stats(app1).ClassicCalls
	fake.Expire(app1)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if status, body := call("GET", "/v1/proxy/wx1/cgi-bin/getcallbackip"); status != 200 || !strings.Contains(body, `"ip_list"`) {
				t.Errorf("a call that met the ended token: %d %s", status, body)
			}
		})
	}
	wg.Wait()
	if n := fake.Stats(app1).ClassicCalls - fetches; n != 1 {
		t.Errorf("%d fetches for twenty calls that met one ended token, want 1", n)
	}

	fetches = fake.Stats(app1).ClassicCalls
	if status, body := call("GET", "/v1/proxy/wx1/cgi-bin/busy"); status != 200 || !strings.Contains(body, `"errcode":-1`) {
		t.Errorf("WeChat's -1: %d %s, want it as it came", status, body)
	}
	if status, body := call("POST", "/v1/proxy/wx1/cgi-bin/gateway"); status != 502 || !strings.Contains(body, "bad gateway") {
		t.Errorf("a 502 from WeChat's side: %d %s, want it as it came", status, body)
	}
	if busy.Load() != 1 || gateway.Load() != 1 || fake.Stats(app1).ClassicCalls != fetches {
		t.Errorf("WeChat's failures cost %d and %d calls and %d fetches, want 1, 1 and 0", busy.Load(), gateway.Load(), fake.Stats(app1).ClassicCalls-fetches)
	}

	for _, tt := range []struct {
		method, path, key string
		status            int
		want              string
	}{
		{"GET", "/v1/proxy/wx1/cgi-bin/token?grant_type=client_credential", clientKey, 400, "fetches a token"},
		{"GET", "/v1/proxy/wx1/cgi-bin/stable_token", clientKey, 400, "fetches a token"},
		{"GET", "/v1/proxy/wx1/sns/jscode2session?js_code=x", clientKey, 400, "API prefixes"},
		{"GET", "/v1/proxy/wx1/cgi-bin/getcallbackip?appsecret=x", clientKey, 400, "carries a secret"},
		{"GET", "/v1/proxy/wx1", clientKey, 400, "API prefixes"},
		{"GET", "/v1/proxy/nope/cgi-bin/getcallbackip", clientKey, 404, "not_found"},
		{"GET", "/v1/proxy/wx1/cgi-bin/getcallbackip", "", 401, "unauthorized"},
		{"GET", "/v1/proxy/wx1/cgi-bin/getcallbackip", "not-a-key-0123456789", 401, "unauthorized"},
	} {
		before := busy.Load() + gateway.Load()
		status, body := keyCall(t, addr, tt.method, tt.path, tt.key, "")
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s: %d %s; want %d with %q", tt.method, tt.path, status, body, tt.status, tt.want)
		}
		if busy.Load()+gateway.Load() != before {
			t.Errorf("%s %s reached WeChat", tt.method, tt.path)
		}
	}
}

// TestProxySuite: a suite's corp is proxied to WeCom's host with its
// token as access_token, and the calls that spend a suite's auth codes or
// fetch its tokens are refused before WeCom is called.
func TestProxySuite(t *testing.T) {
	const suiteID, corp = "ww5e17e000000000f1", "ww00000000000000a7"
	s := wxtest.Suite{SuiteID: suiteID, Secret: "suite-secret", Token: "suite-token", EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
	fake := wxtest.New(wxtest.Config{})
	fake.AddSuite(s)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	addr := runYAML(t, `listen: 127.0.0.1:0
data_dir: `+t.TempDir()+`
upstream: {api: `+srv.URL+`, wecom: `+srv.URL+`}
credentials:
  - {id: crm, kind: suite, suite_id: `+suiteID+`, secret: suite-secret, token: suite-token, encoding_aes_key: `+s.EncodingAESKey+`}
clients:
  - {name: e2e, key: `+clientKey+`, allow: [crm, crm/*]}
`).Addr()
	fake.SetPushTarget(suiteID, "http://"+addr+"/callback/suite/crm", nil)
	if _, err := fake.PushSuiteTicket(t.Context(), suiteID); err != nil {
		t.Fatal(err)
	}
	getToken(t, addr, "crm")
	if _, err := fake.CreateAuth(t.Context(), suiteID, corp); err != nil {
		t.Fatal(err)
	}
	getToken(t, addr, "crm/"+corp)
	before := fake.Stats(suiteID + "/" + corp).GoodUses
	if status, body := keyCall(t, addr, "GET", "/v1/proxy/crm/"+corp+"/cgi-bin/get_api_domain_ip", clientKey, ""); status != 200 || !strings.Contains(body, `"ip_list"`) {
		t.Fatalf("proxied get_api_domain_ip with the corp's token: %d %s", status, body)
	}
	if got := fake.Stats(suiteID + "/" + corp).GoodUses; got != before+1 {
		t.Errorf("the corp's token was used %d times upstream, want 1", got-before)
	}
	permanentCalls := fake.Stats(suiteID).PermanentCodeCalls
	for _, path := range []string{"/v1/proxy/crm/cgi-bin/service/v2/get_permanent_code", "/v1/proxy/crm/cgi-bin/service/get_permanent_code",
		"/v1/proxy/crm/cgi-bin/service/get_corp_token", "/v1/proxy/crm/cgi-bin/service/get_suite_token"} {
		if status, body := keyCall(t, addr, "POST", path, clientKey, `{"auth_code":"x"}`); status != 400 || !strings.Contains(body, "fetches a token") {
			t.Errorf("POST %s: %d %s, want 400", path, status, body)
		}
	}
	if got := fake.Stats(suiteID).PermanentCodeCalls; got != permanentCalls {
		t.Errorf("a refused call reached get_permanent_code")
	}
}
