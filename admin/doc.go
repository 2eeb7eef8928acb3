// Package admin is wxtoken's admin API: credentials and clients added,
// changed, disabled and removed at run time, operator actions (refresh
// now, lift a block, clear WeChat's quota), and an append-only audit log
// of every change and every refusal.
//
// What is added at run time lives in the store, like tokens, so that it
// survives a restart and reaches every instance sharing the store: each
// instance applies the stored records to its token manager and client
// list, at start, whenever the store reports a change under "admin/", and
// on a periodic re-read. The configuration file is the bootstrap and
// always wins: a stored record whose id (or client name) the file also
// names is left alone.
//
// Admin keys come from the file only, each with a role: viewer (read),
// operator (also refresh, unblock, clear_quota, enable, disable) and admin
// (also add, change and remove credentials and clients, rotate keys).
// Client keys never open the admin API.
//
// It also lists what the dashboard (package ui) shows besides: the
// third-party platforms with their tickets' age, their authorizers
// (searched and paged), and WeChat's hosts.
package admin
