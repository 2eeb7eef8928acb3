package redis

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/storetest"
)

// openCluster opens a Store on c with prefix, closed with the test.
func openCluster(t *testing.T, c *redistest.Cluster, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Addrs: c.Addrs(), KeyPrefix: prefix, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open(cluster): %v", err)
	}
	if _, ok := s.client.(*redis.ClusterClient); !ok {
		t.Fatalf("Open(%d addresses) made a %T, want a cluster client", len(c.Addrs()), s.client)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCluster runs the whole contract on a three-master cluster, where
// keys spread over nodes, List must scan every master and a write's
// notification crosses the cluster bus to a subscriber on another node.
func TestCluster(t *testing.T) {
	c := redistest.NewCluster(t, 3, redistest.Options{})
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return openCluster(t, c, freshPrefix()) })
	})
	t.Run("Shared", func(t *testing.T) {
		storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
			p := freshPrefix()
			return openCluster(t, c, p), openCluster(t, c, p)
		})
	})
	t.Run("SpreadOverMasters", func(t *testing.T) { testSpread(t, c) })
}

// testSpread writes enough keys to reach every master, checks that they
// did, and that List and Watch see them all.
func testSpread(t *testing.T, c *redistest.Cluster) {
	const n = 60
	ctx := t.Context()
	prefix := freshPrefix()
	s := openCluster(t, c, prefix)
	ch, err := s.Watch(ctx, "tok/")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Put(ctx, fmt.Sprintf("tok/%02d", i), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, srv := range c.Servers {
		cl := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		held, err := cl.Keys(ctx, prefix+"kv:tok/*").Result()
		cl.Close()
		if err != nil || len(held) == 0 {
			t.Fatalf("master %s holds %d of the keys (%v): they did not spread", srv.Addr(), len(held), err)
		}
	}
	keys, err := s.List(ctx, "tok/")
	if err != nil || len(keys) != n {
		t.Fatalf("List = %d keys, %v; want %d", len(keys), err, n)
	}
	for i, k := range keys {
		if want := fmt.Sprintf("tok/%02d", i); k != want {
			t.Fatalf("List[%d] = %q, want %q (sorted)", i, k, want)
		}
	}
	seen, timeout := map[string]bool{}, time.After(10*time.Second)
	for len(seen) < n {
		select {
		case k := <-ch:
			seen[k] = k != ""
		case <-timeout:
			t.Fatalf("watch delivered %d of %d keys", len(seen), n)
		}
	}
}
