package store

import "context"

// Rewriter is implemented by stores that can replace a value's bytes
// without a new version: the way to re-encode a value (seal it under a
// new key) while it is in use. A Put for that would bump the version, and
// a refresher that read the value before would lose its compare-and-swap
// and drop the token it had just fetched; a rewrite leaves its Put to
// succeed.
type Rewriter interface {
	// Rewrite stores value under key in place of old, keeping the
	// version, if the stored value is byte for byte old; it reports
	// whether it did. Comparing the bytes, not the version, makes it safe
	// against a value deleted and written again meanwhile. It is as
	// durable as a Put, has Put's limits, and notifies no watcher: what
	// the value means has not changed.
	Rewrite(ctx context.Context, key string, old, value []byte) (bool, error)
}
