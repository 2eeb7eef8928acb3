// Package wxtest is a fake WeChat upstream: an http.Handler that answers the
// credential endpoints of api.weixin.qq.com and qyapi.weixin.qq.com the way
// the real hosts do, as described in WECHAT.md. The project's tests, its demo
// and the fakewx subcommand run against it; nothing in this package reaches
// the real WeChat.
//
// A Fake is built with New, given accounts with AddApp (Official Accounts and
// Mini Programs), AddCorp (WeCom applications), AddComponent (Open
// Platform third-party platforms), AddSuite (WeCom third-party and
// custom-developed app templates) and AddProvider (WeCom service
// providers), and then either mounted in an http.Server
// or httptest.Server, or called in-process through Client. Close stops the
// pushes it runs in the background.
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
//     count toward the corp's daily quota. A custom app's permanent code
//     works here as its corp's secret (see WeCom suites below).
//   - GET /cgi-bin/getcallbackip and GET /cgi-bin/get_api_domain_ip: validate
//     an access token of any kind and answer {"ip_list":["127.0.0.1"]}; a
//     WeCom suite's or provider's token, which is no access token, answers
//     40014.
//   - GET /cgi-bin/ticket/getticket?type=jsapi|wx_card: the JS-SDK ticket of
//     the token's account (an app, or an authorizer for its
//     authorizer_access_token). Within its life (Config.TicketLifetime) every
//     fetch returns the same ticket, with expires_in the full lifetime, never
//     the time left, as WeChat does; then a new one is issued. A new access
//     token leaves the ticket alone; ExpireTicket ends one early.
//   - GET /cgi-bin/get_jsapi_ticket and GET /cgi-bin/ticket/get?type=agent_config
//     (WeCom): the same, with a WeCom application's token, for the corp's
//     ticket (one per corp) and the application's (one per application).
//     WeCom's hourly limits apply: 400 ticket fetches per corp and 100 per
//     application, then 45009 for an hour. TicketCalls, TicketInfo and
//     LookupTicket show what was fetched and issued.
//   - POST /cgi-bin/clear_quota (with a token) and POST /cgi-bin/clear_quota/v2
//     (with appid and appsecret) reset an app's daily call count, ten times a
//     Beijing calendar month, then 48006.
//
// The third-party platform's and WeCom suites' endpoints are described
// below. Any other path
// is a plain 404. The token endpoints insist on their method
// (GET for token and gettoken, POST for stable_token) and answer 43002
// otherwise, so that a client sending the wrong one finds out in tests.
//
// Token uses answer 41001 for a missing token, 40014 for a string that is not
// shaped like one of the fake's tokens, 40001 for an unknown token or one
// replaced longer than Config.Overlap ago, and 42001 for one past its
// lifetime or ended early with Expire. The ticket endpoints take only their
// own host's tokens: a WeCom token at getticket is unknown (40001), any
// other token at WeCom's ticket endpoints answers 40014.
//
// # Third-party platforms
//
// A component (WECHAT.md §4) is added with AddComponent and given the URL
// its pushes go to with SetPushTarget. The fake pushes like WeChat: a POST
// with timestamp, nonce, msg_signature, encrypt_type=aes and signature in
// the query and an <xml><AppId/><Encrypt/></xml> envelope, sealed with the
// component's token and EncodingAESKey for the component appid; only an
// HTTP 200 answer of exactly "success" counts as delivered. PushTicket
// pushes a component_verify_ticket; Authorize, UpdateAuthorization and
// Unauthorize play an account owner and push the authorization events;
// PushRaw sends any plaintext, and lets a test tamper with the request.
//
//   - POST /cgi-bin/component/api_start_push_ticket: checks the appid (40013)
//     and secret (40125), answers ok, and pushes a ticket 100 ms later from
//     a goroutine that Close stops; after Close it answers -1.
//   - POST /cgi-bin/component/api_component_token: a new token per call; the
//     one it replaces stays valid for Config.Overlap. A ticket is accepted
//     for 12 hours from its push while it is the current or the previous
//     one; an older one answers 61005, a value never pushed 61006. Calls
//     count toward Config.DailyLimit (45009) and meet faults.
//   - POST /cgi-bin/component/api_create_preauthcode: a pre-auth code valid
//     for 1800 s. Authorize spends the newest unused one.
//   - POST /cgi-bin/component/api_query_auth: exchanges an authorization
//     code, once and within 3600 s, for an authorizer access token and the
//     refresh token; 61009 for a code unknown, spent or withdrawn, 61010 for
//     an expired one.
//   - POST /cgi-bin/component/api_authorizer_token: a new authorizer access
//     token per call (the old one stays valid for Config.Overlap) and the
//     refresh token, which rotates as SetRefreshTokenRotation says; 61023
//     for any refresh token that does not work for the pair, including one
//     of another component's authorization. Faults apply, by authorizer
//     appid, then component appid.
//
// The last three take the component token as ?component_access_token= or
// the newer ?access_token=. They answer as token uses do for a missing,
// malformed, replaced or expired token, 61014 for a token that is not a
// component's, 40013 when the body names another component, and 61004 for
// a caller off the whitelist. Component and authorizer access tokens work
// at the token-using endpoints like any other, and count in Stats of the
// component or the authorizer appid. The classic and stable token
// endpoints answer 61024 for a component appid.
//
// # WeCom suites
//
// A suite (WECHAT.md §7) is added with AddSuite and given the URL of its
// command callback with SetPushTarget, by suite id. The fake pushes like
// WeCom: a POST with msg_signature, timestamp and nonce in the query (no
// encrypt_type, no signature) and a
// <xml><ToUserName/><Encrypt/><AgentID/></xml> envelope, the suite id in
// ToUserName and AgentID empty, sealed with the suite's token and
// EncodingAESKey for the suite id as receive id; only an HTTP 200 answer of
// exactly "success" counts as delivered. PushSuiteTicket pushes a
// suite_ticket (WeCom pushes one every 10 minutes, and has no API to ask
// for one); CreateAuth, ChangeAuth, CancelAuth and ResetPermanentCode play
// a corp's administrator and push create_auth (with an AuthCode),
// change_auth and cancel_auth (with AuthCorpId) and reset_permanent_code
// (with an AuthCode); GrantSuite records an authorization without a push;
// PushSuiteRaw sends any plaintext. A suite id starting "dk" is a
// custom-developed app (代开发) template.
//
//   - POST /cgi-bin/service/get_suite_token: a new token per call; the one
//     it replaces stays valid for Config.Overlap. A ticket is accepted for
//     30 minutes from its push while it is the current or the previous
//     one; any other value, another suite's ticket included, answers
//     40085. 40083 answers an unknown suite id, 40080 a wrong secret.
//     Calls count toward Config.DailyLimit (45009) and meet faults.
//   - POST /cgi-bin/service/v2/get_permanent_code: exchanges an auth code,
//     once and within 10 minutes, for a new permanent code, with
//     auth_corp_info, the authorized agent in auth_info and
//     is_customized_app (true for a dk suite); 40078 for a code unknown,
//     spent, expired or withdrawn. The permanent code replaces any earlier
//     one of the corp at once. The v1 /cgi-bin/service/get_permanent_code
//     answers a corp token too.
//   - POST /cgi-bin/service/get_corp_token: a new corp token per call (the
//     old one stays valid for Config.Overlap); 40084 for a permanent code
//     that is not the corp's current one, 48001 for a dk suite, whose
//     tokens come from gettoken with the permanent code as corpsecret
//     (a replaced or cancelled one answers 40001 there).
//   - POST /cgi-bin/service/get_provider_token: the same token while it is
//     valid, with expires_in what it has left; 40013 for an unknown
//     provider corpid, 40001 for a wrong secret.
//
// The endpoints that take a suite token as ?suite_access_token= answer 41001
// when it is missing, 40082 for a value that is not a suite token or one
// replaced longer than Config.Overlap ago, and 42009 for one past its
// lifetime or ended early with Expire. They answer an errcode only when
// they fail. Corp tokens work at WeCom's token-using endpoints and fetch
// the corp's JS-SDK ticket (TicketKey.Account is the corpid) and the
// agent's (TicketKey.App is the agentid); a suite or provider token there
// answers 40014. CancelAuth ends the corp tokens of the authorization at
// once. A corp's authorization of a suite is an account of its own,
// "suiteid/corpid": Stats, Expire and faults take that id for its corp
// tokens, and a call meets its fault, else the suite's.
//
// # Faults and limits
//
// SetFault makes the token-issuing endpoints (classic, stable, gettoken,
// and the platform's and suites' token endpoints) fail, stall or hang, for
// one app or for all; it acts before any other check,
// so a faulted call issues nothing and uses no quota, although it is counted
// in Stats. SetWhitelist, FreezeSecret and Expire reproduce the account-level
// failures a token server has to survive: 40164 (WeCom 60020), 40243, and a
// token ended before its time. TokenInfo tells a test which of these ended a
// token whose use failed.
//
// # Time
//
// All validity and quota decisions read Config.Now, so a test can drive a
// clock of its own. Fault delays and hangs wait on real timers instead, which
// under testing/synctest are the bubble's fake timers.
package wxtest
