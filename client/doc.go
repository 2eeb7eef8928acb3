// Package client is the Go client of a wxtoken server, for business servers
// that call WeChat's APIs.
//
// A Client holds one cache per credential: TokenSource(id).Token answers
// from memory while the token the server gave is within the expires_in it
// came with, fetches the next one in the background before that runs out,
// and lets one request answer however many callers miss at once. Invalidate
// reports a token WeChat refused and caches the token the server answers.
// TicketSource does the same for JS-SDK tickets, and JSSDK signs a page for
// wx.config.
//
// Transport is an http.RoundTripper for calls to WeChat's APIs: it adds the
// access_token parameter and, when WeChat answers that the token is dead,
// reports it and retries the call once with the new one.
//
// With WithWatch, the client also keeps one Server-Sent Events stream
// (GET /v1/watch) for all its sources, so that a token refreshed anywhere
// in the wxtoken cluster replaces the cached one at once; while the stream
// is down, the expiry-driven refresh goes on as without it.
//
// The client uses only the standard library. A Client and its sources are
// safe for concurrent use; Close stops every goroutine the client started.
package client
