package redis

import (
	"testing"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/storetest"
)

// TestSentinel runs the contract through a Sentinel, as a deployment with
// MasterName does: the client asks the Sentinel for the master, then
// talks to it, pub/sub included.
func TestSentinel(t *testing.T) {
	master := redistest.New(t, redistest.Options{})
	sentinel := redistest.NewSentinel(t, master, "wx")
	openSentinel := func(t *testing.T, prefix string) store.Store {
		s, err := Open(t.Context(), Config{Addrs: []string{sentinel.Addr()}, MasterName: "wx", KeyPrefix: prefix, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("Open(sentinel): %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return openSentinel(t, freshPrefix()) })
	})
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
			p := freshPrefix()
			return openSentinel(t, p), openSentinel(t, p)
		})
	})
}
