// Package wechat is the upstream client for WeChat's credential endpoints:
// the Official Account / Mini Program access_token (classic and stable), the
// WeCom app token and the JS-SDK tickets (an account's jsapi and wx_card
// tickets, a WeCom corp's and application's), with the JS-SDK signature
// that pages pass to wx.config. It also speaks for third-party platforms
// (component tokens and their authorizers') and for WeCom suites: the
// suite_access_token, the permanent code an installing corp's auth code is
// exchanged for, the corp token it yields, and the provider_access_token.
//
// Every failure WeChat reports in a JSON body becomes an *APIError carrying
// its errcode, and Classify sorts any error into the few classes a token
// server acts on: retry with backoff, stop until the daily quota resets,
// stop and alert for a configuration error, or refresh a stale token.
// Secrets and tokens never appear in the errors this package returns.
//
// Calls to the API host fail over to a second entry to the same API
// (api2.weixin.qq.com) when the first cannot be reached, and health checks
// bring them back; see Client.
package wechat
