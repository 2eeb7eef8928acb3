package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// slots is the number of hash slots of a Redis Cluster.
const slots = 16384

// Cluster is a Redis Cluster of masters, each a Server of its own, with
// the hash slots shared evenly among them. Writes to different keys land
// on different servers, and pub/sub messages cross the cluster bus, as in
// production.
type Cluster struct {
	// Servers are the masters, in slot order.
	Servers []*Server
}

// NewCluster starts masters servers with opt, forms a cluster of them and
// waits until every node reports it healthy.
func NewCluster(t testing.TB, masters int, opt Options) *Cluster {
	t.Helper()
	if masters < 1 {
		t.Fatalf("redistest: a cluster needs a master, got %d", masters)
	}
	opt.Args = append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "5000",
	}, opt.Args...)
	c := &Cluster{}
	for range masters {
		c.Servers = append(c.Servers, New(t, opt))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		t.Fatalf("redistest: form a cluster of %v: %v", c.Addrs(), err)
	}
	return c
}

// Addrs are the masters' addresses, a seed list for a cluster client.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// form gives each node its slots and a distinct epoch, introduces the
// nodes to the first, and waits for the cluster to settle.
func (c *Cluster) form(ctx context.Context) error {
	clients := make([]*redis.Client, len(c.Servers))
	for i, s := range c.Servers {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		defer clients[i].Close()
	}
	n := len(c.Servers)
	for i, cl := range clients {
		if err := cl.Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			return fmt.Errorf("set-config-epoch on %s: %w", c.Servers[i].Addr(), err)
		}
		args := []any{"cluster", "addslots"}
		for slot := i * slots / n; slot < (i+1)*slots/n; slot++ {
			args = append(args, slot)
		}
		if err := cl.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("addslots on %s: %w", c.Servers[i].Addr(), err)
		}
	}
	for _, s := range c.Servers[1:] {
		if err := clients[0].Do(ctx, "cluster", "meet", "127.0.0.1", s.port).Err(); err != nil {
			return fmt.Errorf("meet %s: %w", s.Addr(), err)
		}
	}
	for i, cl := range clients {
		if err := settled(ctx, cl, n); err != nil {
			return fmt.Errorf("%s: %w", c.Servers[i].Addr(), err)
		}
	}
	return nil
}

// settled waits until a node knows every node and slot and calls the
// cluster healthy.
func settled(ctx context.Context, cl *redis.Client, nodes int) error {
	want := []string{
		"cluster_state:ok",
		fmt.Sprintf("cluster_slots_assigned:%d", slots),
		fmt.Sprintf("cluster_known_nodes:%d", nodes),
	}
	var info string
	for {
		var err error
		info, err = cl.ClusterInfo(ctx).Result()
		if err == nil && containsAll(info, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster did not settle (last error %v):\n%s", err, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
