package redis

import "github.com/redis/go-redis/v9"

// The scripts run atomically on the node that holds their one key, which
// is what makes them compare-and-swap operations on a Cluster as on a
// single server. Versions are compared as the decimal strings Redis keeps;
// HINCRBY does the arithmetic in 64-bit integers, not Lua's doubles.
//
// A write publishes its key in the same script, so no write that succeeded
// goes unannounced, and none that failed is announced.

// putScript stores a value if the version is the expected one.
//
//	KEYS[1] the value's hash
//	ARGV[1] expected version ("0": absent)
//	ARGV[2] value
//	ARGV[3] change channel
//	ARGV[4] key as callers name it, the message
//
// It returns the new version, or 0 on a conflict.
var putScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v') or '0'
if cur ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'd', ARGV[2])
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return v
`)

// rewriteScript replaces a value's bytes, keeping its version, if they are
// the expected ones; it publishes nothing, since the meaning is unchanged.
//
//	KEYS[1] the value's hash
//	ARGV[1] expected bytes
//	ARGV[2] new bytes
//
// It returns 1 when replaced, 0 otherwise.
var rewriteScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'd') ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'd', ARGV[2])
return 1
`)

// deleteScript removes a value if the version is the expected one.
//
//	KEYS[1] the value's hash
//	ARGV[1] expected version
//	ARGV[2] change channel
//	ARGV[3] key as callers name it, the message
//
// It returns 1 when deleted, 0 when absent, -1 on a conflict.
var deleteScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then
	return 0
end
if cur ~= ARGV[1] then
	return -1
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

// extendScript resets a lease's expiry while it still holds the holder's
// value.
//
//	KEYS[1] the lease
//	ARGV[1] the holder's random value
//	ARGV[2] new ttl in milliseconds
//
// It returns 1 when extended, 0 when the lease is lost.
var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// unlockScript deletes a lease while it still holds the holder's value, so
// that a holder whose lease expired never releases its successor's.
//
//	KEYS[1] the lease
//	ARGV[1] the holder's random value
//
// It returns 1 when released, 0 when already lost.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)
