// Package wxtest is a fake WeChat upstream: an http.Handler that answers the
// credential endpoints of api.weixin.qq.com and qyapi.weixin.qq.com the way
// the real hosts do, as described in WECHAT.md. The project's tests, its demo
// and the fakewx subcommand run against it; nothing in this package reaches
// the real WeChat.
//
// A Fake is built with New, given accounts with AddApp (Official Accounts and
// Mini Programs) and AddCorp (WeCom applications), and then either mounted in
// an http.Server or httptest.Server, or called in-process through Client.
// Client needs no sockets, so tests that run under testing/synctest can use
// it and still let the bubble's fake clock advance. Any URL host works with
// Client, including the real ones.
//
// # What the fake does
//
// One handler serves both hosts' paths:
//
//   - GET /cgi-bin/token (classic): every successful call issues a new token.
//     The token it replaces stays valid for Config.Overlap, then answers 40001.
//     Every call, failed or not, counts toward the app's daily quota; past
//     Config.DailyLimit the answer is 45009 until midnight Beijing time (UTC+8)
//     or a clear_quota call.
//   - POST /cgi-bin/stable_token: a separate family of tokens. Normal mode
//     returns the current token, with expires_in set to what remains, until
//     it is within Config.StableRenewBefore of expiry; then it issues a new
//     one and the old one lives out its own lifetime. Force mode issues a new
//     token at once and keeps the old one valid for Config.Overlap (the docs
//     only say it is invalidated; the overlap mirrors the classic endpoint so
//     that a client which forces a refresh can still finish calls in flight).
//     At most 20 forced refreshes a Beijing day (45009) and at least 30 s apart
//     (45011). Stable calls do not use the classic endpoint's daily quota.
//   - GET /cgi-bin/gettoken (WeCom): one token per (corpid, corpsecret); each
//     call issues a new one and the old one stays valid for Config.Overlap,
//     because the current docs no longer promise to repeat a token. Calls
//     count toward the corp's daily quota.
//   - GET /cgi-bin/getcallbackip and GET /cgi-bin/get_api_domain_ip: validate
//     an access token of any kind and answer {"ip_list":["127.0.0.1"]}.
//   - GET /cgi-bin/ticket/getticket: a new JS-SDK ticket on every call with a
//     valid token. Tickets are not remembered, since no endpoint of the fake
//     checks them; a token server is expected to cache them.
//   - POST /cgi-bin/clear_quota (with a token) and POST /cgi-bin/clear_quota/v2
//     (with appid and appsecret) reset an app's daily call count, ten times a
//     Beijing calendar month, then 48006.
//
// Any other path is a plain 404. The token endpoints insist on their method
// (GET for token and gettoken, POST for stable_token) and answer 43002
// otherwise, so that a client sending the wrong one finds out in tests.
//
// Token uses answer 41001 for a missing token, 40014 for a string that is not
// shaped like one of the fake's tokens, 40001 for an unknown token or one
// replaced longer than Config.Overlap ago, and 42001 for one past its
// lifetime or ended early with Expire.
//
// # Faults and limits
//
// SetFault makes the token-issuing endpoints (classic, stable and gettoken)
// fail, stall or hang, for one app or for all; it acts before any other check,
// so a faulted call issues nothing and uses no quota, although it is counted
// in Stats. SetWhitelist, FreezeSecret and Expire reproduce the account-level
// failures a token server has to survive: 40164 (WeCom 60020), 40243, and a
// token ended before its time.
//
// # Time
//
// All validity and quota decisions read Config.Now, so a test can drive a
// clock of its own. Fault delays and hangs wait on real timers instead, which
// under testing/synctest are the bubble's fake timers.
package wxtest
