// Package token keeps every credential's token fresh and hands out the
// current one without waiting on WeChat.
//
// A Manager holds one entry per credential. The request path reads an
// immutable Snapshot through an atomic pointer; refreshes happen beside
// it, either on a timer planned at a jittered fraction of the token's
// lifetime or when a caller reports that the token it holds failed.
//
// A refresh follows the same four steps on one node or many (after
// certmagic's maintain.go): read the store first, since a peer may have
// refreshed already; join the one refresh in flight for the credential in
// this process; take the credential's lease in the store; read again under
// the lease; only then call WeChat, and write the result with a
// compare-and-swap on the version read, so a refresher that stalled past
// its lease cannot overwrite a newer token.
//
// Failures are sorted by wechat.Classify: transient ones are retried with
// capped, jittered exponential backoff while the still-valid token keeps
// being served; configuration errors stop the credential until an
// operator acts (or a long retry interval passes); the daily quota stops
// fetching until midnight Beijing time.
//
// Timers use the runtime clock, so tests drive the scheduler under
// testing/synctest, where hours pass in milliseconds.
package token
