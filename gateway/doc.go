// Package gateway delivers what WeChat pushes to an Official Account's or
// WeCom application's callback URL to the business servers configured in
// its callback.forward rules, as plain, verified, HMAC-signed JSON.
//
// The server checks and decrypts a push, then hands the plaintext to
// Gateway.Receive, which writes one queue entry per matching queue rule to
// the store before WeChat is answered, and asks the reply rule, if one
// matches, for the passive reply. A delivery loop POSTs the queued
// entries, in order per destination and user, retrying with capped
// backoff until a destination acknowledges with a 2xx or the entry is old
// enough to become a dead letter. Everything lives in the store, so
// several instances sharing Redis deliver each entry once between them,
// and a killed process loses nothing.
package gateway
