package client

import (
	"context"
	"fmt"
)

// JSSDKConfig is what a page passes to wx.config (and, for WeCom, to
// wx.agentConfig): the signature of one page URL.
type JSSDKConfig struct {
	AppID     string `json:"appId,omitempty"`   // Official Accounts
	CorpID    string `json:"corpid,omitempty"`  // WeCom (agentConfig)
	AgentID   string `json:"agentid,omitempty"` // WeCom (agentConfig)
	Timestamp int64  `json:"timestamp"`
	NonceStr  string `json:"nonceStr"`
	Signature string `json:"signature"`
	// AgentConfig is WeCom's second signature, for wx.agentConfig, when
	// the credential has an agent_config ticket.
	AgentConfig *JSSDKConfig `json:"agentConfig,omitempty"`
}

// JSSDK asks the server to sign pageURL (the page's full URL, without its
// #fragment) for wx.config with credential id's jsapi ticket. Each call
// is one request: a signature is made for one page, with a fresh nonce.
func (c *Client) JSSDK(ctx context.Context, id, pageURL string) (*JSSDKConfig, error) {
	if pageURL == "" {
		return nil, fmt.Errorf("wxtoken client: JSSDK: page URL required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var out JSSDKConfig
	body := struct {
		URL string `json:"url"`
	}{pageURL}
	if err := c.call(ctx, "POST", "/v1/tokens/"+escapeID(id)+"/jssdk", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
