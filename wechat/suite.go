package wechat

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// WeCom third-party suite endpoints, WECHAT.md §7. All of them live on the
// WeCom host and take the suite's token as ?suite_access_token=. Unlike
// gettoken they carry an errcode only when they fail; a success answer has
// none, which tokenReply reads as 0.

// PermanentAuth is what get_permanent_code answers: a corp's authorization
// of a suite.
type PermanentAuth struct {
	// CorpID and CorpName are auth_corp_info.corpid and corp_name: the
	// authorizing corp.
	CorpID, CorpName string
	// PermanentCode yields the corp's tokens for as long as the
	// authorization lasts: through get_corp_token for a third-party app,
	// or as the corpsecret of gettoken for a custom-developed app (代开发).
	// It is a secret.
	PermanentCode string
	// AgentID is auth_info.agent[0].agentid, the application the corp
	// installed; 0 if the answer names none.
	AgentID int64
	// Customized is is_customized_app: the suite is a custom-developed
	// app template (代开发), whose permanent code is the app's secret.
	Customized bool
	// Token is the corp token the v1 endpoint answers with; zero for v2,
	// which issues none.
	Token Token
}

// SuiteToken fetches a suite_access_token from POST
// /cgi-bin/service/get_suite_token with the newest suite_ticket WeCom
// pushed (a ticket lives 30 minutes; 40085 answers a stale one).
func (c *Client) SuiteToken(ctx context.Context, suiteID, secret, ticket string) (Token, error) {
	body := map[string]string{"suite_id": suiteID, "suite_secret": secret, "suite_ticket": ticket}
	var r struct {
		tokenReply
		SuiteAccessToken string `json:"suite_access_token"`
	}
	if err := c.postWeCom(ctx, "get_suite_token", "/cgi-bin/service/get_suite_token", "", body, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.SuiteAccessToken)
}

// PermanentCode exchanges the auth code of a create_auth or
// reset_permanent_code push (valid 10 minutes, single use) for the corp's
// permanent code. It calls POST /cgi-bin/service/v2/get_permanent_code,
// or with v1 the older /cgi-bin/service/get_permanent_code, which also
// answers a corp token (PermanentAuth.Token).
func (c *Client) PermanentCode(ctx context.Context, suiteToken, authCode string, v1 bool) (PermanentAuth, error) {
	op, path := "v2/get_permanent_code", "/cgi-bin/service/v2/get_permanent_code"
	if v1 {
		op, path = "get_permanent_code", "/cgi-bin/service/get_permanent_code"
	}
	var r struct {
		tokenReply
		PermanentCode string `json:"permanent_code"`
		Corp          struct {
			CorpID   string `json:"corpid"`
			CorpName string `json:"corp_name"`
		} `json:"auth_corp_info"`
		Info struct {
			Agent []struct {
				AgentID int64 `json:"agentid"`
			} `json:"agent"`
		} `json:"auth_info"`
		Customized bool `json:"is_customized_app"`
	}
	if err := c.postWeCom(ctx, op, path, suiteToken, map[string]string{"auth_code": authCode}, &r); err != nil {
		return PermanentAuth{}, err
	}
	if r.ErrCode != 0 {
		return PermanentAuth{}, &APIError{ErrCode: r.ErrCode, ErrMsg: r.ErrMsg}
	}
	// The permanent code goes into JSON bodies and, for a custom app, a
	// URL query, exactly as tokens do: it must pass the same check.
	if !plainToken(r.PermanentCode) || !plainToken(r.Corp.CorpID) {
		return PermanentAuth{}, ErrBadResponse
	}
	a := PermanentAuth{CorpID: r.Corp.CorpID, CorpName: r.Corp.CorpName, PermanentCode: r.PermanentCode, Customized: r.Customized}
	if len(r.Info.Agent) > 0 {
		a.AgentID = r.Info.Agent[0].AgentID
	}
	if v1 {
		tok, err := r.token(r.AccessToken)
		if err != nil {
			return PermanentAuth{}, err
		}
		a.Token = tok
	}
	return a, nil
}

// CorpToken fetches an authorized corp's access token from POST
// /cgi-bin/service/get_corp_token. A custom-developed app (代开发) gets its
// token from WeComToken instead, with the permanent code as the secret.
func (c *Client) CorpToken(ctx context.Context, suiteToken, corpid, permanentCode string) (Token, error) {
	body := map[string]string{"auth_corpid": corpid, "permanent_code": permanentCode}
	var r tokenReply
	if err := c.postWeCom(ctx, "get_corp_token", "/cgi-bin/service/get_corp_token", suiteToken, body, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.AccessToken)
}

// ProviderToken fetches the service provider's provider_access_token from
// POST /cgi-bin/service/get_provider_token. WeCom answers the same token
// while it is valid, with expires_in the time it has left.
func (c *Client) ProviderToken(ctx context.Context, corpid, secret string) (Token, error) {
	body := map[string]string{"corpid": corpid, "provider_secret": secret}
	var r struct {
		tokenReply
		ProviderAccessToken string `json:"provider_access_token"`
	}
	if err := c.postWeCom(ctx, "get_provider_token", "/cgi-bin/service/get_provider_token", "", body, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.ProviderAccessToken)
}

// postWeCom posts body as JSON to path on the WeCom host, with the suite
// access token in the query when given. The body carries the secrets, and
// errors never carry a body (see do), so they stay out of errors.
func (c *Client) postWeCom(ctx context.Context, op, path, suiteToken string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if suiteToken != "" {
		path += "?" + url.Values{"suite_access_token": {suiteToken}}.Encode()
	}
	return c.do(ctx, op, http.MethodPost, c.wecom()+path, b, out)
}
