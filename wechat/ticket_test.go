package wechat

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// ticketCalls are the three ticket fetches, each with the request it must
// make: host ("api" or "wecom"), path and query.
var ticketCalls = []struct {
	name  string
	host  string
	path  string
	query url.Values
	call  func(ctx context.Context, c *Client, token string) (Token, error)
}{
	{"getticket jsapi", "api", "/cgi-bin/ticket/getticket", url.Values{"access_token": {"TOK"}, "type": {"jsapi"}},
		func(ctx context.Context, c *Client, tok string) (Token, error) { return c.Ticket(ctx, tok, "jsapi") }},
	{"getticket wx_card", "api", "/cgi-bin/ticket/getticket", url.Values{"access_token": {"TOK"}, "type": {"wx_card"}},
		func(ctx context.Context, c *Client, tok string) (Token, error) { return c.Ticket(ctx, tok, "wx_card") }},
	{"wecom corp", "wecom", "/cgi-bin/get_jsapi_ticket", url.Values{"access_token": {"TOK"}},
		func(ctx context.Context, c *Client, tok string) (Token, error) { return c.WeComJSAPITicket(ctx, tok) }},
	{"wecom agent", "wecom", "/cgi-bin/ticket/get", url.Values{"access_token": {"TOK"}, "type": {"agent_config"}},
		func(ctx context.Context, c *Client, tok string) (Token, error) { return c.WeComAgentTicket(ctx, tok) }},
}

// ticketHost answers every request with body, and records the host it
// stands for and the request it got.
type ticketHost struct {
	name string
	body string
	got  *[]string
	req  **http.Request
}

func (h ticketHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	*h.got = append(*h.got, h.name)
	*h.req = r
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(h.body))
}

func TestTicketRequests(t *testing.T) {
	const okBody = `{"errcode":0,"errmsg":"ok","ticket":"bxLdikRXVbTPdHSM05e5u5sUoXNKd8-41ZO3MhKoyN5OfkWITDGgnr2fwJ0m9E8NYzWKVZvdVtaUgWvsdshFKA","expires_in":7200}`
	for _, tt := range ticketCalls {
		t.Run(tt.name, func(t *testing.T) {
			var hosts []string
			var req *http.Request
			api := httptest.NewServer(ticketHost{"api", okBody, &hosts, &req})
			defer api.Close()
			wecom := httptest.NewServer(ticketHost{"wecom", okBody, &hosts, &req})
			defer wecom.Close()
			c := &Client{API: api.URL, WeCom: wecom.URL}

			tk, err := tt.call(t.Context(), c, "TOK")
			if err != nil {
				t.Fatal(err)
			}
			want := Token{Value: "bxLdikRXVbTPdHSM05e5u5sUoXNKd8-41ZO3MhKoyN5OfkWITDGgnr2fwJ0m9E8NYzWKVZvdVtaUgWvsdshFKA", ExpiresIn: 7200 * time.Second}
			if tk != want {
				t.Errorf("got %+v, want %+v", tk, want)
			}
			if len(hosts) != 1 || hosts[0] != tt.host {
				t.Fatalf("requests went to %v, want one to %s", hosts, tt.host)
			}
			if req.Method != http.MethodGet || req.URL.Path != tt.path || req.URL.Query().Encode() != tt.query.Encode() {
				t.Errorf("request %s %s?%s, want GET %s?%s", req.Method, req.URL.Path, req.URL.RawQuery, tt.path, tt.query.Encode())
			}
		})
	}
}

func TestTicketErrors(t *testing.T) {
	tests := []struct {
		body  string
		code  int
		class Class
		bad   bool // ErrBadResponse rather than an *APIError
	}{
		{`{"errcode":40001,"errmsg":"invalid credential"}`, 40001, Stale, false},
		{`{"errcode":42001,"errmsg":"access_token expired"}`, 42001, Stale, false},
		{`{"errcode":40014,"errmsg":"invalid access_token"}`, 40014, Stale, false},
		{`{"errcode":45009,"errmsg":"api freq out of limit"}`, 45009, DailyQuota, false},
		{`{"errcode":-1,"errmsg":"system error"}`, -1, Retry, false},
		{`{"errcode":0,"errmsg":"ok","ticket":"","expires_in":7200}`, 0, Retry, true},
		{`{"errcode":0,"errmsg":"ok","ticket":"t","expires_in":0}`, 0, Retry, true},
		{`{"errcode":0,"errmsg":"ok","access_token":"not-a-ticket","expires_in":7200}`, 0, Retry, true},
	}
	for _, call := range ticketCalls {
		for _, tt := range tests {
			var hosts []string
			var req *http.Request
			srv := httptest.NewServer(ticketHost{"any", tt.body, &hosts, &req})
			c := &Client{API: srv.URL, WeCom: srv.URL}
			_, err := call.call(t.Context(), c, "TOK")
			srv.Close()
			var api *APIError
			switch {
			case tt.bad:
				if !errors.Is(err, ErrBadResponse) {
					t.Errorf("%s, body %s: error %v, want ErrBadResponse", call.name, tt.body, err)
				}
			case !errors.As(err, &api) || api.ErrCode != tt.code || Classify(err) != tt.class:
				t.Errorf("%s, body %s: error %v classed %s; want APIError %d classed %s",
					call.name, tt.body, err, Classify(err), tt.code, tt.class)
			}
		}
	}
}

// TestTicketsAgainstFake: the client and the fake WeChat agree on every
// ticket endpoint, including the repeat within a ticket's life.
func TestTicketsAgainstFake(t *testing.T) {
	f := wxtest.New(wxtest.Config{})
	f.AddApp("wx1", "s1")
	f.AddCorp("ww1", "cs1")
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &Client{API: srv.URL, WeCom: srv.URL}
	ctx := t.Context()

	oa, err := c.ClassicToken(ctx, "wx1", "s1")
	if err != nil {
		t.Fatal(err)
	}
	corp, err := c.WeComToken(ctx, "ww1", "cs1")
	if err != nil {
		t.Fatal(err)
	}
	fetches := []struct {
		name string
		key  wxtest.TicketKey
		call func() (Token, error)
	}{
		{"jsapi", wxtest.TicketKey{Account: "wx1", Type: wxtest.TicketJSAPI},
			func() (Token, error) { return c.Ticket(ctx, oa.Value, "jsapi") }},
		{"wx_card", wxtest.TicketKey{Account: "wx1", Type: wxtest.TicketCard},
			func() (Token, error) { return c.Ticket(ctx, oa.Value, "wx_card") }},
		{"wecom corp", wxtest.TicketKey{Account: "ww1", Type: wxtest.TicketJSAPI},
			func() (Token, error) { return c.WeComJSAPITicket(ctx, corp.Value) }},
		{"wecom agent", wxtest.TicketKey{Account: "ww1", Type: wxtest.TicketAgent, App: "cs1"},
			func() (Token, error) { return c.WeComAgentTicket(ctx, corp.Value) }},
	}
	for _, ff := range fetches {
		first, err := ff.call()
		if err != nil || first.ExpiresIn != 7200*time.Second {
			t.Fatalf("%s: %+v, %v", ff.name, first, err)
		}
		if again, err := ff.call(); err != nil || again != first {
			t.Errorf("%s again: %+v, %v; want %+v", ff.name, again, err, first)
		}
		if info, ok := f.TicketInfo(ff.key); !ok || info.Value != first.Value {
			t.Errorf("%s: the fake holds %+v, %v; want %q", ff.name, info, ok, first.Value)
		}
	}
	// Each host refuses the other's tokens, as a stale token.
	if _, err := c.WeComJSAPITicket(ctx, oa.Value); ErrCode(err) != CodeInvalidToken || Classify(err) != Stale {
		t.Errorf("WeCom ticket with an OA token: %v; want 40014 classed stale", err)
	}
	if _, err := c.Ticket(ctx, corp.Value, "jsapi"); ErrCode(err) != CodeInvalidCredential || Classify(err) != Stale {
		t.Errorf("OA ticket with a WeCom token: %v; want 40001 classed stale", err)
	}
}
