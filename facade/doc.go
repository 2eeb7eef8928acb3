// Package facade serves WeChat's own token endpoints from wxtoken's
// tokens, so that a business server's SDK (silenceper/wechat, WxJava,
// easywechat, Senparc, co-wechat-api, wechatpy) works unmodified once its
// base URL points here instead of api.weixin.qq.com or qyapi.weixin.qq.com.
//
// The SDK sends the account's real appid (or corpid) and, where it would
// send the AppSecret, a wxtoken client key: the key is checked against the
// client's allow list exactly as on the /v1 API, and the answer is the
// current token in WeChat's wire format, never a fetch from WeChat. Errors
// are WeChat's shapes and errcodes too, since an SDK understands no other.
// Tickets and authorizer tokens, which WeChat hands to the holder of an
// access token, are handed out here to the holder of a token this facade
// issued, mapped back to its credential.
//
// Every other path is an API call the SDK sends to the same base URL: it
// is forwarded to WeChat with a token wxtoken issued, and retried once
// with the new token when WeChat refuses that one (forward.go); without
// such a token it is refused, so the facade is never an open relay.
//
// The expires_in the facade answers is chosen so that no SDK caches a
// token past the moment wxtoken's refresh plan lets it die; see
// expires.go.
package facade
