package wechat

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// Third-party platform (Open Platform component) endpoints, WECHAT.md §4.

// Authorization is what api_query_auth answers for an authorization code.
type Authorization struct {
	AuthorizerAppID string
	Token           Token
	RefreshToken    string
	// FuncInfo is the permission sets granted, as WeChat's ids.
	FuncInfo []int
}

// ComponentToken fetches a component_access_token with the latest
// component_verify_ticket.
func (c *Client) ComponentToken(ctx context.Context, appid, secret, ticket string) (Token, error) {
	body := map[string]string{"component_appid": appid, "component_appsecret": secret, "component_verify_ticket": ticket}
	var r struct {
		tokenReply
		ComponentAccessToken string `json:"component_access_token"`
	}
	if err := c.postJSON(ctx, "api_component_token", "/cgi-bin/component/api_component_token", "", body, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.ComponentAccessToken)
}

// StartPushTicket asks WeChat to push a component_verify_ticket now.
func (c *Client) StartPushTicket(ctx context.Context, appid, secret string) error {
	body := map[string]string{"component_appid": appid, "component_secret": secret}
	var r tokenReply
	if err := c.postJSON(ctx, "api_start_push_ticket", "/cgi-bin/component/api_start_push_ticket", "", body, &r); err != nil {
		return err
	}
	if r.ErrCode != 0 {
		return &APIError{ErrCode: r.ErrCode, ErrMsg: r.ErrMsg}
	}
	return nil
}

// PreAuthCode creates a pre_auth_code for the authorization page.
func (c *Client) PreAuthCode(ctx context.Context, componentToken, appid string) (Token, error) {
	var r struct {
		tokenReply
		PreAuthCode string `json:"pre_auth_code"`
	}
	body := map[string]string{"component_appid": appid}
	if err := c.postJSON(ctx, "api_create_preauthcode", "/cgi-bin/component/api_create_preauthcode", componentToken, body, &r); err != nil {
		return Token{}, err
	}
	return r.token(r.PreAuthCode)
}

// QueryAuth exchanges an authorization code for the authorizer's first
// access token and its refresh token.
func (c *Client) QueryAuth(ctx context.Context, componentToken, appid, code string) (Authorization, error) {
	var r struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Info    struct {
			AuthorizerAppID string `json:"authorizer_appid"`
			AccessToken     string `json:"authorizer_access_token"`
			ExpiresIn       int64  `json:"expires_in"`
			RefreshToken    string `json:"authorizer_refresh_token"`
			FuncInfo        []struct {
				Category struct {
					ID int `json:"id"`
				} `json:"funcscope_category"`
			} `json:"func_info"`
		} `json:"authorization_info"`
	}
	body := map[string]string{"component_appid": appid, "authorization_code": code}
	if err := c.postJSON(ctx, "api_query_auth", "/cgi-bin/component/api_query_auth", componentToken, body, &r); err != nil {
		return Authorization{}, err
	}
	if r.ErrCode != 0 {
		return Authorization{}, &APIError{ErrCode: r.ErrCode, ErrMsg: r.ErrMsg}
	}
	tr := tokenReply{ExpiresIn: r.Info.ExpiresIn}
	tok, err := tr.token(r.Info.AccessToken)
	if err != nil || !plainToken(r.Info.RefreshToken) || !plainToken(r.Info.AuthorizerAppID) {
		return Authorization{}, ErrBadResponse
	}
	a := Authorization{AuthorizerAppID: r.Info.AuthorizerAppID, Token: tok, RefreshToken: r.Info.RefreshToken}
	for _, f := range r.Info.FuncInfo {
		a.FuncInfo = append(a.FuncInfo, f.Category.ID)
	}
	return a, nil
}

// AuthorizerToken refreshes an authorizer's access token. WeChat may
// answer a new refresh token, which replaces the one sent: the caller must
// store it durably before using the new access token.
func (c *Client) AuthorizerToken(ctx context.Context, componentToken, appid, authorizer, refresh string) (Token, string, error) {
	var r struct {
		tokenReply
		AccessToken  string `json:"authorizer_access_token"`
		RefreshToken string `json:"authorizer_refresh_token"`
	}
	body := map[string]string{"component_appid": appid, "authorizer_appid": authorizer, "authorizer_refresh_token": refresh}
	if err := c.postJSON(ctx, "api_authorizer_token", "/cgi-bin/component/api_authorizer_token", componentToken, body, &r); err != nil {
		return Token{}, "", err
	}
	tok, err := r.token(r.AccessToken)
	if err != nil {
		return Token{}, "", err
	}
	newRefresh := r.RefreshToken
	if newRefresh == "" {
		newRefresh = refresh
	} else if !plainToken(newRefresh) {
		return Token{}, "", ErrBadResponse
	}
	return tok, newRefresh, nil
}

// postJSON posts body to path on the API host, with the component access
// token in the query when given.
func (c *Client) postJSON(ctx context.Context, op, path, componentToken string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if componentToken != "" {
		path += "?" + url.Values{"component_access_token": {componentToken}}.Encode()
	}
	return c.doAPI(ctx, op, http.MethodPost, path, b, out)
}
