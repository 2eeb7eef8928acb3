// Package redis is the shared store: several wxtoken instances point at one
// Redis (standalone, Sentinel or Cluster) and run the same refresh code as
// a single node, with exactly one refresher per credential at a time.
//
// # What it provides
//
// Values are versioned, and Put and Delete are compare-and-swap Lua
// scripts, so a writer that stalled past its lease cannot overwrite a
// newer value it never read. Leases are SET NX PX with a random value,
// extended and released by scripts that act only while the value is still
// the holder's. Every successful write also publishes its key on a pub/sub
// channel, in the same script, so that Watch tells every instance of a new
// token as soon as a peer stores it.
//
// # Key layout
//
// With the default KeyPrefix "wxtoken:":
//
//	wxtoken:kv:<key>       a hash: v = version, d = value
//	wxtoken:lease:<name>   a string holding the holder's random value, with a TTL
//	wxtoken:changes        the pub/sub channel; each message is a key written
//
// Each script touches one key, so every operation works on a Cluster, where
// keys spread over slots; List scans every master. A KeyPrefix with a hash
// tag, such as "{wxtoken}:", puts every key in one slot instead, which some
// proxies require. Pub/sub channels ignore database numbers: deployments
// sharing a server should differ in KeyPrefix, not only in DB.
//
// # Settings a deployment needs
//
// The store keeps data that cannot be fetched again: component verify
// tickets that WeChat pushes every ten minutes, authorizer refresh tokens,
// daily fetch counters. Redis must therefore persist it and never evict it:
//
//   - appendonly yes: the append-only file. Open refuses a server without
//     it, unless Config.AllowNoPersistence is set (for a server whose
//     persistence is managed some other way, or a test).
//   - appendfsync always, or everysec (Redis's default) as a trade-off.
//     With always, Redis fsyncs every write before it replies, which is
//     what the store contract promises: a write that returned survives any
//     crash. With everysec, Redis normally still writes each command to
//     the file before it replies, so killing the process loses nothing,
//     but losing the machine (or a disk stalling) can lose up to about two
//     seconds of writes. Writes here are rare (a token per credential
//     every hour or two), so always costs little.
//   - maxmemory-policy noeviction, or no maxmemory: an evicted key is lost
//     data, and an evicted lease lets a second refresher start. With
//     noeviction a full Redis refuses writes, which callers see as errors.
//   - On a Cluster or with Sentinel, the same on every node, replicas
//     included, since a replica may become the master.
//
// # When Redis is unreachable
//
// Calls fail fast with an error rather than wait: a refused connection
// fails at once, no command is retried behind the caller's back, and a
// Redis that accepts connections but does not answer (a hung host, a
// partition) holds a call no longer than its context's deadline or the
// client's three-second read timeout, whichever is sooner. A caller
// keeps serving the tokens it holds in memory. Calls succeed again by
// themselves within about a second of Redis coming back (after many
// failed dials the client stops dialing and probes once a second); the
// Store need not be reopened. Watch channels stay open through the outage
// and receive "" when the subscription is re-established, since changes
// made meanwhile were not reported.
package redis
