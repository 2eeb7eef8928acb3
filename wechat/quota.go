package wechat

import (
	"context"
	"encoding/json"
	"net/http"
)

// ClearQuota calls POST /cgi-bin/clear_quota/v2 with the AppSecret, which
// resets the account's daily API call counts, cgi-bin/token's 2,000
// included, and so lifts a 45009. WeChat allows it 10 times a month per
// account and answers 48006 past that. The v2 form needs no access token,
// which is what an account whose quota is spent may lack.
func (c *Client) ClearQuota(ctx context.Context, appid, secret string) error {
	body, err := json.Marshal(struct {
		AppID     string `json:"appid"`
		AppSecret string `json:"appsecret"`
	}{appid, secret})
	if err != nil {
		return err
	}
	var r struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := c.doAPI(ctx, "clear_quota", http.MethodPost, "/cgi-bin/clear_quota/v2", body, &r); err != nil {
		return err
	}
	if r.ErrCode != 0 {
		return &APIError{ErrCode: r.ErrCode, ErrMsg: r.ErrMsg}
	}
	return nil
}
