package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// ticketYAML configures an Official Account (wx1) and a WeCom application
// (hr) with every ticket they can have, and a platform whose authorizers
// get the jsapi ticket. Tokens live two hours, tickets lifetime.
func ticketYAML(dir, up string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
upstream: {api: %s, api_failover: [], wecom: %s, timeout: 2s}
refresh: {overlap: 3s, min_force_interval: 1s}
credentials:
  - {id: wx1, kind: mp, appid: %s, secret: secret1, mode: classic, tickets: [jsapi, wx_card]}
  - {id: wx2, kind: mp, appid: %s, secret: secret2}
  - {id: hr, kind: wecom, corpid: %s, secret: corp-secret, agentid: 1000002, tickets: [jsapi, agent_config]}
  - id: plat
    kind: component
    component_appid: %s
    secret: %s
    token: %s
    encoding_aes_key: %s
    tickets: [jsapi]
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, dir, up, up, app1, app2, corp1, platformComp.AppID, platformComp.Secret, platformComp.Token, platformComp.EncodingAESKey, clientKey)
}

// ticketWorld is a wxtoken with tickets against a fake WeChat.
type ticketWorld struct {
	fake *wxtest.Fake
	up   string
	dir  string
	m    *Main
}

func newTicketWorld(t *testing.T, ticketLife time.Duration) *ticketWorld {
	t.Helper()
	fake := wxtest.New(wxtest.Config{TicketLifetime: ticketLife})
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	fake.AddCorp(corp1, "corp-secret")
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	w := &ticketWorld{fake: fake, up: srv.URL, dir: t.TempDir()}
	w.start(t)
	t.Cleanup(func() { w.m.Close() }) // the last one started
	return w
}

func (w *ticketWorld) start(t *testing.T) {
	t.Helper()
	cfg, err := config.Parse([]byte(ticketYAML(w.dir, w.up)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	w.m = &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := w.m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.fake.SetPushTarget(platformComp.AppID, "http://"+w.m.Addr()+"/callback/component/plat", nil)
}

type ticketReply struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Ticket    string `json:"ticket"`
	ExpiresIn int64  `json:"expires_in"`
	ExpiresAt string `json:"expires_at"`
}

// call makes an API request with the client key and returns the status
// and body.
func (w *ticketWorld) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+w.m.Addr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ticket waits for id's ticket of type typ.
func (w *ticketWorld) ticket(t *testing.T, id, typ string) ticketReply {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body := w.call(t, "GET", "/v1/tokens/"+id+"/tickets/"+typ, "")
		if status == 200 {
			var r ticketReply
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s ticket %s: %d %s", id, typ, status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ticketKeys are the fake's names for the tickets of the test's
// credentials, by credential and type.
var ticketKeys = map[[2]string]wxtest.TicketKey{
	{"wx1", "jsapi"}:       {Account: app1, Type: wxtest.TicketJSAPI},
	{"wx1", "wx_card"}:     {Account: app1, Type: wxtest.TicketCard},
	{"hr", "jsapi"}:        {Account: corp1, Type: wxtest.TicketJSAPI},
	{"hr", "agent_config"}: {Account: corp1, Type: wxtest.TicketAgent, App: "corp-secret"},
}

// alive fails the test if the fake says value is not a live ticket now.
func (w *ticketWorld) alive(t *testing.T, what, value string) {
	t.Helper()
	info, ok := w.fake.LookupTicket(value)
	if !ok {
		t.Fatalf("%s: %q was never issued", what, value)
	}
	if now := time.Now(); !now.Before(info.Expires) {
		t.Fatalf("%s: served %q at %s, dead since %s", what, value, now.Format(time.StampMilli), info.Expires.Format(time.StampMilli))
	}
}

// sign is the JS-SDK signature, computed here independently of package
// wechat: sha1 of the four fields in this order, url without #fragment.
func sign(ticket, nonce string, ts int64, url string) string {
	url, _, _ = strings.Cut(url, "#")
	h := sha1.Sum([]byte(fmt.Sprintf("jsapi_ticket=%s&noncestr=%s&timestamp=%d&url=%s", ticket, nonce, ts, url)))
	return hex.EncodeToString(h[:])
}

// TestTicketsServedRefreshedAndRestarted: every kind's tickets are served
// with their expiry, never dead, replaced when they expire without a
// failed request, and a restart serves the stored ones with no fetch.
func TestTicketsServedRefreshedAndRestarted(t *testing.T) {
	const life = 6 * time.Second
	w := newTicketWorld(t, life)
	first := map[[2]string]string{}
	for k := range ticketKeys {
		r := w.ticket(t, k[0], k[1])
		if r.ID != k[0] || r.Type != k[1] || r.Ticket == "" || r.ExpiresIn <= 0 || r.ExpiresIn > int64(life/time.Second) {
			t.Fatalf("%v: %+v", k, r)
		}
		if _, err := time.Parse(time.RFC3339, r.ExpiresAt); err != nil {
			t.Errorf("%v: expires_at %q: %v", k, r.ExpiresAt, err)
		}
		w.alive(t, fmt.Sprint(k), r.Ticket)
		first[k] = r.Ticket
	}

	// Past one ticket life: every request answered, with a live ticket;
	// each ticket replaced once it expired.
	seen := map[[2]string]map[string]bool{}
	for end := time.Now().Add(life + 3*time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for k := range ticketKeys {
			status, body := w.call(t, "GET", "/v1/tokens/"+k[0]+"/tickets/"+k[1], "")
			if status != 200 {
				t.Fatalf("%v: %d %s", k, status, body)
			}
			var r ticketReply
			json.Unmarshal([]byte(body), &r)
			w.alive(t, fmt.Sprint(k), r.Ticket)
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			seen[k][r.Ticket] = true
		}
	}
	for k := range ticketKeys {
		if len(seen[k]) < 2 {
			t.Errorf("%v: one ticket served across its expiry, want it replaced", k)
		}
	}

	// Restart: the stored tickets are served with no fetch.
	calls := map[[2]string]int{}
	for k, key := range ticketKeys {
		calls[k] = w.fake.TicketCalls(key)
	}
	held := map[[2]string]string{}
	for k := range ticketKeys {
		held[k] = w.ticket(t, k[0], k[1]).Ticket
	}
	if err := w.m.Close(); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	for k, key := range ticketKeys {
		got := w.ticket(t, k[0], k[1]).Ticket
		if n := w.fake.TicketCalls(key) - calls[k]; n != 0 {
			t.Errorf("%v: %d ticket fetches at restart, want 0", k, n)
		}
		if info, _ := w.fake.TicketInfo(key); got != held[k] && info.Value != got {
			t.Errorf("%v: after restart %q, want the stored %q", k, got, held[k])
		}
	}
}

// TestJSSDKSignature: POST /v1/tokens/{id}/jssdk answers what wx.config
// (and for WeCom wx.agentConfig) needs, signed with the live ticket, for
// the url as given without its fragment; bad urls and unknown tickets are
// refused clearly.
func TestJSSDKSignature(t *testing.T) {
	w := newTicketWorld(t, 0)
	const page = "https://shop.example.com/pay?order=42&x=a%20b"
	type sig struct {
		AppID, CorpID, AgentID string
		Timestamp              int64
		NonceStr, Signature    string
	}
	var reply struct {
		sig
		AppID       string `json:"appId"`
		AgentConfig *struct {
			CorpID    string `json:"corpid"`
			AgentID   string `json:"agentid"`
			Timestamp int64  `json:"timestamp"`
			NonceStr  string `json:"nonceStr"`
			Signature string `json:"signature"`
		} `json:"agentConfig"`
	}
	for _, tt := range []struct {
		id, appID, agent string
		config, agentKey wxtest.TicketKey
	}{
		{"wx1", app1, "", ticketKeys[[2]string{"wx1", "jsapi"}], wxtest.TicketKey{}},
		{"hr", corp1, "1000002", ticketKeys[[2]string{"hr", "jsapi"}], ticketKeys[[2]string{"hr", "agent_config"}]},
	} {
		w.ticket(t, tt.id, "jsapi")
		status, body := w.call(t, "POST", "/v1/tokens/"+tt.id+"/jssdk", `{"url":"`+page+`#section-2"}`)
		if status != 200 {
			t.Fatalf("%s: %d %s", tt.id, status, body)
		}
		reply.AgentConfig = nil
		if err := json.Unmarshal([]byte(body), &reply); err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		json.Unmarshal([]byte(body), &raw)
		for _, f := range []string{"appId", "timestamp", "nonceStr", "signature"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("%s: answer lacks %q: %s", tt.id, f, body)
			}
		}
		info, _ := w.fake.TicketInfo(tt.config)
		if reply.AppID != tt.appID || reply.Signature != sign(info.Value, reply.NonceStr, reply.Timestamp, page) {
			t.Errorf("%s: %s; want appId %s and the signature of %s with the live ticket", tt.id, body, tt.appID, page)
		}
		if d := time.Since(time.Unix(reply.Timestamp, 0)); d < -time.Second || d > 5*time.Second {
			t.Errorf("%s: timestamp %d is not now", tt.id, reply.Timestamp)
		}
		if tt.agent == "" {
			if reply.AgentConfig != nil {
				t.Errorf("%s: agentConfig in an Official Account's answer", tt.id)
			}
			continue
		}
		ac := reply.AgentConfig
		agent, _ := w.fake.TicketInfo(tt.agentKey)
		if ac == nil || ac.CorpID != corp1 || ac.AgentID != tt.agent ||
			ac.Signature != sign(agent.Value, ac.NonceStr, ac.Timestamp, page) {
			t.Errorf("%s: agentConfig %+v; want corpid %s, agentid %s, signed with the agent ticket", tt.id, ac, corp1, tt.agent)
		}
	}

	for _, tt := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/v1/tokens/wx1/jssdk", `{"url":"ftp://shop.example.com/"}`, 400, "absolute http or https URL"},
		{"POST", "/v1/tokens/wx1/jssdk", `{"url":"/relative"}`, 400, "absolute http or https URL"},
		{"POST", "/v1/tokens/wx1/jssdk", `{}`, 400, "url is required"},
		{"POST", "/v1/tokens/wx1/jssdk", `{"url":`, 400, "bad_request"},
		{"POST", "/v1/tokens/wx2/jssdk", `{"url":"https://a.example/"}`, 404, "no tickets enabled"},
		{"GET", "/v1/tokens/wx1/tickets/agent_config", "", 404, `no \"agent_config\" ticket`},
		{"GET", "/v1/tokens/wx1/tickets/nope", "", 404, `no \"nope\" ticket`},
		{"GET", "/v1/tokens/nobody/tickets/jsapi", "", 404, "unknown credential"},
	} {
		status, body := w.call(t, tt.method, tt.path, tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s: %d %s; want %d with %q", tt.method, tt.path, tt.body, status, body, tt.status, tt.want)
		}
	}
}

// TestAuthorizerTickets: a platform's tickets apply to each authorizer
// that authorizes it, signed with the authorizer's own appid, and stop
// when the authorization is withdrawn.
func TestAuthorizerTickets(t *testing.T) {
	w := newTicketWorld(t, 0)
	getToken(t, w.m.Addr(), "plat")
	const auth = "wx00000000000000a1"
	if _, err := w.fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatal(err)
	}
	r := w.ticket(t, auth, "jsapi")
	w.alive(t, "authorizer jsapi", r.Ticket)
	if info, _ := w.fake.TicketInfo(wxtest.TicketKey{Account: auth, Type: wxtest.TicketJSAPI}); info.Value != r.Ticket {
		t.Fatalf("served %q, the fake's ticket for %s is %q", r.Ticket, auth, info.Value)
	}
	status, body := w.call(t, "POST", "/v1/tokens/"+auth+"/jssdk", `{"url":"https://a.example/p"}`)
	var s struct {
		AppID     string `json:"appId"`
		Timestamp int64  `json:"timestamp"`
		NonceStr  string `json:"nonceStr"`
		Signature string `json:"signature"`
	}
	json.Unmarshal([]byte(body), &s)
	if status != 200 || s.AppID != auth || s.Signature != sign(r.Ticket, s.NonceStr, s.Timestamp, "https://a.example/p") {
		t.Fatalf("authorizer jssdk: %d %s", status, body)
	}
	if status, body := w.call(t, "GET", "/v1/tokens/"+auth+"/tickets/wx_card", ""); status != 404 {
		t.Errorf("a ticket the platform does not enable: %d %s", status, body)
	}
	// A watch of the ticket, by either id, starts with it.
	for _, id := range []string{auth, "plat/" + auth} {
		typ, data := firstEvent(t, w.m.Addr(), id+"/tickets/jsapi")
		if typ != "ticket" || !strings.Contains(data, `"ticket":"`+r.Ticket+`"`) || !strings.Contains(data, `"id":"plat/`+auth+`","type":"jsapi"`) {
			t.Errorf("watch of %s/tickets/jsapi: first event %s %s", id, typ, data)
		}
	}
	// The same by the authorizer's id, {platform}/{appid}.
	status, body = w.call(t, "GET", "/v1/tokens/plat/"+auth+"/tickets/jsapi", "")
	if status != 200 || !strings.Contains(body, `"ticket":"`+r.Ticket+`"`) || !strings.Contains(body, `"id":"plat/`+auth+`"`) {
		t.Errorf("ticket by the namespaced id: %d %s; want %s", status, body, r.Ticket)
	}
	status, body = w.call(t, "POST", "/v1/tokens/plat/"+auth+"/jssdk", `{"url":"https://a.example/p"}`)
	json.Unmarshal([]byte(body), &s)
	if status != 200 || s.AppID != auth || s.Signature != sign(r.Ticket, s.NonceStr, s.Timestamp, "https://a.example/p") {
		t.Errorf("jssdk by the namespaced id: %d %s", status, body)
	}

	// A restart restores the authorizer with its ticket: nothing fetched.
	key := wxtest.TicketKey{Account: auth, Type: wxtest.TicketJSAPI}
	calls := w.fake.TicketCalls(key)
	if err := w.m.Close(); err != nil {
		t.Fatal(err)
	}
	w.start(t)
	if got := w.ticket(t, auth, "jsapi").Ticket; got != r.Ticket {
		t.Errorf("after a restart the authorizer's ticket is %q, want the stored %q", got, r.Ticket)
	}
	if n := w.fake.TicketCalls(key) - calls; n != 0 {
		t.Errorf("%d ticket fetches at restart, want 0", n)
	}

	if err := w.fake.Unauthorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := w.call(t, "GET", "/v1/tokens/"+auth+"/tickets/jsapi", "")
		if status == http.StatusGone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the authorization was withdrawn: %d %s, want 410", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeadTokenInsideTicketFetch: WeChat ends the account's access token
// early; the ticket's next fetch is refused with 40001. That costs one
// access token fetch, the ticket is fetched again with the new token, and
// no request is answered with a dead ticket or an error.
func TestDeadTokenInsideTicketFetch(t *testing.T) {
	const life = 4 * time.Second
	w := newTicketWorld(t, life)
	key := ticketKeys[[2]string{"wx1", "jsapi"}]
	old := getToken(t, w.m.Addr(), "wx1").AccessToken
	w.ticket(t, "wx1", "jsapi")
	before := w.fake.Stats(app1).ClassicCalls
	w.fake.Expire(app1) // every token of the account now answers 42001

	for end := time.Now().Add(life + 3*time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		status, body := w.call(t, "GET", "/v1/tokens/wx1/tickets/jsapi", "")
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var r ticketReply
		json.Unmarshal([]byte(body), &r)
		w.alive(t, "wx1 jsapi", r.Ticket)
	}
	if n := w.fake.Stats(app1).ClassicCalls - before; n != 1 {
		t.Errorf("%d access token fetches after the token died inside ticket fetches, want 1", n)
	}
	if fresh := getToken(t, w.m.Addr(), "wx1").AccessToken; fresh == old {
		t.Error("the dead access token is still served")
	}
	if info, _ := w.fake.TicketInfo(key); !time.Now().Before(info.Expires) {
		t.Errorf("the ticket is dead at the end: %+v", info)
	}
}

// TestClusterTickets: three instances on one Redis share each ticket: one
// fetch per ticket cycle whatever the instance count, every request
// answered with a live ticket from any instance, and a dead access token
// met inside ticket fetches costs one access token fetch in the cluster.
func TestClusterTickets(t *testing.T) {
	const ticketLife = 6 * time.Second
	fake, up := upstream(t, wxtest.Config{TicketLifetime: ticketLife})
	rs := redistest.New(t, redistest.Options{})
	nodes := startNodes(t, 3, clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{overlap: 3s, min_force_interval: 1s}",
		Credentials: `
  - {id: wx1, kind: mp, appid: ` + app1 + `, secret: secret1, mode: classic, tickets: [jsapi]}`})
	hc := newHTTPClient(t)
	key := wxtest.TicketKey{Account: app1, Type: wxtest.TicketJSAPI}
	get := func(n *node) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+n.addr()+"/v1/tokens/wx1/tickets/jsapi", nil)
		req.Header.Set("Authorization", "Bearer "+clientKey)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r ticketReply
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.Ticket
	}
	for _, n := range nodes {
		for status, _ := get(n); status != 200; status, _ = get(n) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	begin, calls0 := time.Now(), fake.TicketCalls(key)
	parent0 := fake.Stats(app1).ClassicCalls

	run := func(d time.Duration, values map[string]bool) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(30 * time.Millisecond) {
			for i, n := range nodes {
				status, tk := get(n)
				if status != 200 {
					t.Fatalf("node %d: %d", i, status)
				}
				info, ok := fake.LookupTicket(tk)
				if !ok || !time.Now().Before(info.Expires) {
					t.Fatalf("node %d served a dead ticket %q (%+v)", i, tk, info)
				}
				values[tk] = true
			}
		}
	}
	values := map[string]bool{}
	run(2*ticketLife+time.Second, values)
	cycles := time.Since(begin) / ticketLife
	// Each cycle is a planned fetch that gets the same ticket back and
	// one just after its expiry that gets the next.
	if n := fake.TicketCalls(key) - calls0; n > 2*int(cycles+1) {
		t.Errorf("%d ticket fetches by 3 instances in %d ticket lives, want at most 2 a life", n, cycles+1)
	}
	if len(values) < 2 {
		t.Errorf("%d tickets served across two lives, want them replaced", len(values))
	}
	// The access token is ended early: the next ticket fetch meets 42001.
	// One access token fetch in the cluster, and still no dead ticket.
	parent := fake.Stats(app1).ClassicCalls
	fake.Expire(app1)
	run(ticketLife+2*time.Second, values)
	// The classic token's own plan (10 s tokens refresh at about 8 s) may
	// add one fetch in this window.
	if n := fake.Stats(app1).ClassicCalls - parent; n < 1 || n > 2 {
		t.Errorf("%d access token fetches after it died inside ticket fetches on 3 instances, want 1 (2 with a planned one)", n)
	}
	t.Logf("%d ticket fetches, %d tickets, %d access token fetches in %s on 3 instances",
		fake.TicketCalls(key)-calls0, len(values), fake.Stats(app1).ClassicCalls-parent0, time.Since(begin).Round(time.Second))
}
