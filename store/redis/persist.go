package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrNoPersistence reports a Redis that would lose the store's data on a
// restart, or whose settings cannot be read to rule that out. Open returns
// it wrapped, with the fix, unless Config.AllowNoPersistence is set.
var ErrNoPersistence = errors.New("redis: writes may not survive a restart")

// checkPersistence refuses a server without an append-only file. On a
// Cluster it asks every master. A Sentinel client asks the current master;
// its replicas, which may become master, are the operator's to configure
// alike.
func checkPersistence(ctx context.Context, client redis.UniversalClient) error {
	if cc, ok := client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return checkNode(ctx, c)
		})
	}
	return checkNode(ctx, client)
}

func checkNode(ctx context.Context, c redis.Cmdable) error {
	addr := "redis"
	if cl, ok := c.(*redis.Client); ok {
		addr = cl.Options().Addr
	}
	got, err := c.ConfigGet(ctx, "appendonly").Result()
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr):
		// CONFIG is disabled or renamed, or the user may not run it, as
		// on many managed services.
		return fmt.Errorf("%w: cannot rule it out on %s, CONFIG GET appendonly failed (%v); "+
			"make sure the service keeps an append-only file (appendonly yes), then set AllowNoPersistence to skip this check",
			ErrNoPersistence, addr, err)
	case err != nil:
		return fmt.Errorf("redis: check persistence on %s: %w", addr, err)
	}
	v, ok := got["appendonly"]
	if !ok {
		return fmt.Errorf("%w: cannot rule it out on %s, CONFIG GET appendonly returned nothing; "+
			"make sure the server keeps an append-only file (appendonly yes), then set AllowNoPersistence to skip this check",
			ErrNoPersistence, addr)
	}
	if v != "yes" {
		return fmt.Errorf("%w: %s has appendonly %s, so a restart would lose verify tickets, refresh tokens and counters; "+
			"set appendonly yes in redis.conf (or CONFIG SET appendonly yes, then CONFIG REWRITE), "+
			"or set AllowNoPersistence if persistence is ensured some other way",
			ErrNoPersistence, addr, v)
	}
	return nil
}
