package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Default upstream hosts.
const (
	DefaultAPI   = "https://api.weixin.qq.com"
	DefaultWeCom = "https://qyapi.weixin.qq.com"
	// DefaultAPIFailover is WeChat's second entry to the same API.
	DefaultAPIFailover = "https://api2.weixin.qq.com"
)

// maxBody bounds what is read of any upstream answer; token answers are a
// few hundred bytes.
const maxBody = 1 << 20

// maxTokenLen rejects absurd answers; WeChat asks for at least 512 bytes
// of storage, so this leaves ample room.
const maxTokenLen = 4096

// Token is a credential WeChat issued: an access token or a JS-SDK ticket.
type Token struct {
	Value     string
	ExpiresIn time.Duration
}

// Client calls WeChat's credential endpoints. The zero value uses the
// real hosts and http.DefaultClient. It is safe for concurrent use, and is
// meant to be shared by pointer: it must not be copied after first use (go
// vet reports copies), since it keeps the state of its API hosts.
//
// Calls to the API host fail over to APIFailover when the active host
// cannot be reached, and CheckHealth or RunHealthChecks bring them back to
// API once it answers again; Upstreams reports where calls go. The WeCom
// host has no failover.
type Client struct {
	// HTTP is the client used for every call; nil means
	// http.DefaultClient. Callers bound each call with its context.
	HTTP *http.Client
	// API is the base URL of the Official Account host; "" means DefaultAPI.
	API string
	// APIFailover are base URLs of the same API, tried in order when API
	// cannot be reached. API and APIFailover are read once, at the first
	// call; changing them later has no effect.
	APIFailover []string
	// WeCom is the base URL of the WeCom host; "" means DefaultWeCom.
	WeCom string

	// ups is the state of the API hosts, created at first use.
	ups atomic.Pointer[upstreams]
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) api() string {
	if c.API != "" {
		return strings.TrimRight(c.API, "/")
	}
	return DefaultAPI
}

func (c *Client) wecom() string {
	if c.WeCom != "" {
		return strings.TrimRight(c.WeCom, "/")
	}
	return DefaultWeCom
}

// tokenReply covers the token and ticket answers of every endpoint here.
type tokenReply struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	Ticket      string `json:"ticket"`
	ExpiresIn   int64  `json:"expires_in"`
}

// ClassicToken fetches a new access token from GET /cgi-bin/token. Each
// successful call issues a new token; the previous one dies about five
// minutes later.
func (c *Client) ClassicToken(ctx context.Context, appid, secret string) (Token, error) {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}
	var r tokenReply
	if err := c.doAPI(ctx, "token", http.MethodGet, "/cgi-bin/token?"+q.Encode(), nil, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.AccessToken)
}

// StableToken calls POST /cgi-bin/stable_token. With force false it returns
// the current stable token while it is valid; with force true it replaces
// it, which WeChat allows at most 20 times a day, 30 seconds apart.
func (c *Client) StableToken(ctx context.Context, appid, secret string, force bool) (Token, error) {
	body, err := json.Marshal(struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", appid, secret, force})
	if err != nil {
		return Token{}, err
	}
	var r tokenReply
	if err := c.doAPI(ctx, "stable_token", http.MethodPost, "/cgi-bin/stable_token", body, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.AccessToken)
}

// WeComToken fetches the token of one WeCom application (corpid plus that
// application's secret) from GET /cgi-bin/gettoken.
func (c *Client) WeComToken(ctx context.Context, corpid, secret string) (Token, error) {
	q := url.Values{"corpid": {corpid}, "corpsecret": {secret}}
	var r tokenReply
	if err := c.do(ctx, "gettoken", http.MethodGet, c.wecom()+"/cgi-bin/gettoken?"+q.Encode(), nil, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.AccessToken)
}

// Ticket fetches a JS-SDK ticket of the given type ("jsapi" or "wx_card")
// with an Official Account access token, or an authorizer_access_token for
// an account a third-party platform manages (wx.config then carries the
// authorizer's appid). A fetch within the ticket's life returns the same
// ticket, and expires_in is always the full 7200 s rather than the time
// left, so a ticket's life counts from the first time its value was seen.
func (c *Client) Ticket(ctx context.Context, accessToken, typ string) (Token, error) {
	q := url.Values{"access_token": {accessToken}, "type": {typ}}
	var r tokenReply
	if err := c.doAPI(ctx, "getticket", http.MethodGet, "/cgi-bin/ticket/getticket?"+q.Encode(), nil, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.Ticket)
}

// WeComJSAPITicket fetches a WeCom corp's JS-SDK ticket, the one wx.config
// is signed with, from GET /cgi-bin/get_jsapi_ticket on the WeCom host.
// accessToken is an application's token (for a third-party suite, the corp
// token from get_corp_token: a suite_access_token answers 40014). WeCom
// allows 400 ticket fetches an hour per corp and 100 per application, and
// answers a fetch within a ticket's life with the same ticket.
func (c *Client) WeComJSAPITicket(ctx context.Context, accessToken string) (Token, error) {
	q := url.Values{"access_token": {accessToken}}
	var r tokenReply
	if err := c.do(ctx, "get_jsapi_ticket", http.MethodGet, c.wecom()+"/cgi-bin/get_jsapi_ticket?"+q.Encode(), nil, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.Ticket)
}

// WeComAgentTicket fetches a WeCom application's JS-SDK ticket, the one
// wx.agentConfig is signed with, from GET
// /cgi-bin/ticket/get?type=agent_config on the WeCom host. accessToken must
// be that application's token. It shares WeComJSAPITicket's hourly limits.
func (c *Client) WeComAgentTicket(ctx context.Context, accessToken string) (Token, error) {
	q := url.Values{"access_token": {accessToken}, "type": {"agent_config"}}
	var r tokenReply
	if err := c.do(ctx, "ticket/get", http.MethodGet, c.wecom()+"/cgi-bin/ticket/get?"+q.Encode(), nil, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.Ticket)
}

// CallbackIP calls GET /cgi-bin/getcallbackip, the cheapest call that
// proves an access token works.
func (c *Client) CallbackIP(ctx context.Context, accessToken string) ([]string, error) {
	q := url.Values{"access_token": {accessToken}}
	var r ipListReply
	if err := c.doAPI(ctx, "getcallbackip", http.MethodGet, "/cgi-bin/getcallbackip?"+q.Encode(), nil, &r); err != nil {
		return nil, err
	}
	return r.list()
}

// WeComAPIDomainIP calls GET /cgi-bin/get_api_domain_ip on the WeCom
// host: any application's token may call it, so it proves a WeCom token
// works without touching the token quota (WeCom's getcallbackip needs
// the application to have a callback URL).
func (c *Client) WeComAPIDomainIP(ctx context.Context, accessToken string) ([]string, error) {
	q := url.Values{"access_token": {accessToken}}
	var r ipListReply
	if err := c.do(ctx, "get_api_domain_ip", http.MethodGet, c.wecom()+"/cgi-bin/get_api_domain_ip?"+q.Encode(), nil, &r); err != nil {
		return nil, err
	}
	return r.list()
}

// ipListReply is the answer of the IP-list endpoints.
type ipListReply struct {
	ErrCode int      `json:"errcode"`
	ErrMsg  string   `json:"errmsg"`
	IPList  []string `json:"ip_list"`
}

func (r *ipListReply) list() ([]string, error) {
	if r.ErrCode != 0 {
		return nil, &APIError{ErrCode: r.ErrCode, ErrMsg: r.ErrMsg}
	}
	return r.IPList, nil
}

func (r *tokenReply) token(value string) (Token, error) {
	if r.ErrCode != 0 {
		return Token{}, &APIError{ErrCode: r.ErrCode, ErrMsg: r.ErrMsg}
	}
	if !plainToken(value) || r.ExpiresIn <= 0 {
		return Token{}, ErrBadResponse
	}
	return Token{Value: value, ExpiresIn: time.Duration(r.ExpiresIn) * time.Second}, nil
}

// do sends one request to u and decodes a JSON answer into out. Errors
// never carry the URL (see scrub); a non-2xx status is an *HTTPError.
func (c *Client) do(ctx context.Context, op, method, u string, body []byte, out any) error {
	resp, err := c.send(ctx, method, u, body)
	if err != nil {
		return scrub(op, err)
	}
	return decode(op, resp, out)
}

// send makes one request. The error, if any, is net/http's: it carries
// the URL until scrubbed.
func (c *Client) send(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.httpClient().Do(req)
}

// decode reads a JSON answer into out and closes the body.
func decode(op string, resp *http.Response, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return fmt.Errorf("wechat: %s: %w", op, &HTTPError{StatusCode: resp.StatusCode})
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return scrub(op, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("wechat: %s: %w: body over %d bytes", op, ErrBadResponse, maxBody)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("wechat: %s: %w", op, ErrBadResponse)
	}
	return nil
}

// plainToken reports whether v looks like a token: non-empty, bounded,
// printable ASCII with no quote or backslash. Tokens are written into JSON
// and URLs unescaped on the hot path, so anything else is refused here.
func plainToken(v string) bool {
	if v == "" || len(v) > maxTokenLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
