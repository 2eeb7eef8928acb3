package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxtoken/wxtoken/store"
)

// DefaultKeyPrefix starts every key and channel name when Config.KeyPrefix
// is empty.
const DefaultKeyPrefix = "wxtoken:"

// ioTimeout is the longest a call waits on a Redis that accepted it but
// does not answer, when the caller's context sets no sooner deadline.
// A healthy server answers every command used here in well under a
// millisecond.
const ioTimeout = 3 * time.Second

// Config says which Redis to use. The zero value of each optional field
// means its default.
type Config struct {
	// Addrs are host:port addresses: one for a standalone server; the
	// Sentinels' with MasterName; two or more nodes of a Cluster (or one,
	// a cluster's configuration endpoint, with Cluster set).
	Addrs []string
	// Username and Password authenticate to Redis (ACL user or
	// requirepass). With Sentinel they are the data nodes' credentials.
	Username, Password string
	// DB is the database number; a Cluster has only 0.
	DB int
	// MasterName selects Sentinel: the name of the monitored master.
	MasterName string
	// Cluster forces Cluster mode with a single address.
	Cluster bool
	// TLS, if set, is used for every connection.
	TLS *tls.Config
	// KeyPrefix starts every key and the change channel, so deployments
	// can share a Redis. Default DefaultKeyPrefix.
	KeyPrefix string
	// AllowNoPersistence lets Open accept a server whose append-only file
	// is off, or whose settings cannot be read (a managed Redis without
	// CONFIG). Data that cannot be fetched again is then lost when Redis
	// restarts, unless its persistence is ensured some other way.
	AllowNoPersistence bool
	// Logger receives the loss and recovery of the change subscription.
	// Default slog.Default().
	Logger *slog.Logger
}

// String describes c without its password.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	return fmt.Sprintf("redis.Config{Addrs:%v Username:%q Password:%q DB:%d MasterName:%q Cluster:%t TLS:%t KeyPrefix:%q AllowNoPersistence:%t}",
		c.Addrs, c.Username, pw, c.DB, c.MasterName, c.Cluster, c.TLS != nil, c.keyPrefix(), c.AllowNoPersistence)
}

// LogValue implements slog.LogValuer without the password.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) keyPrefix() string {
	if c.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return c.KeyPrefix
}

func (c Config) validate() error {
	if len(c.Addrs) == 0 {
		return errors.New("redis: Config.Addrs is empty: give the server's host:port (several for Sentinel or Cluster)")
	}
	if c.DB != 0 && c.MasterName == "" && (c.Cluster || len(c.Addrs) > 1) {
		return fmt.Errorf("redis: Config.DB is %d, but a Cluster has only database 0", c.DB)
	}
	return nil
}

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	keys   keyspace
	log    *slog.Logger
	jitter func(time.Duration) time.Duration // waits between lock attempts
	health feedHealth

	// ctx lives until Close and bounds the change subscription.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	hub    store.Hub

	closed  atomic.Bool
	mu      sync.Mutex // guards feeding and the transition to closed
	feeding bool       // the change subscription has been started
}

var _ store.Store = (*Store)(nil)

// keyspace names the Redis keys and channel of one KeyPrefix.
type keyspace struct {
	data    string // prefix of values: data+key
	lease   string // prefix of leases: lease+name
	claim   string // prefix of claims: claim+key
	channel string // where writes are announced
}

func newKeyspace(prefix string) keyspace {
	return keyspace{data: prefix + "kv:", lease: prefix + "lease:", claim: prefix + "claim:", channel: prefix + "changes"}
}

// Open connects to Redis, checks that it answers and, unless
// AllowNoPersistence, that it persists writes.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         cfg.Addrs,
		Username:      cfg.Username,
		Password:      cfg.Password,
		DB:            cfg.DB,
		MasterName:    cfg.MasterName,
		IsClusterMode: cfg.Cluster,
		TLSConfig:     cfg.TLS,
		ClientName:    "wxtoken",
		// One attempt per call, one dial per attempt: while Redis is down
		// callers hear so at once and serve what they hold, and a script
		// whose reply was lost is not run again behind the caller, who
		// re-reads after any error.
		MaxRetries:    -1,
		DialerRetries: 1,
		// The caller's deadline bounds the wait for a reply, and
		// ioTimeout bounds it without one.
		ContextTimeoutEnabled: true,
		ReadTimeout:           ioTimeout,
		WriteTimeout:          ioTimeout,
	})
	s := NewFromClient(client, cfg)
	if err := client.Ping(ctx).Err(); err != nil {
		s.Close()
		return nil, fmt.Errorf("redis: ping %v: %w", cfg.Addrs, err)
	}
	if !cfg.AllowNoPersistence {
		if err := checkPersistence(ctx, client); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// NewFromClient returns a Store on a client the caller configured, for
// settings Config does not offer. It neither pings nor checks persistence:
// the caller vouches for the server. Of cfg only KeyPrefix and Logger are
// used. The client must be a *redis.Client (standalone or Sentinel) or a
// *redis.ClusterClient: a Ring shards pub/sub by channel and would lose
// change notifications. Close closes the client.
func NewFromClient(client redis.UniversalClient, cfg Config) *Store {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		client: client,
		keys:   newKeyspace(cfg.keyPrefix()),
		log:    log,
		jitter: func(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) },
		health: feedHealth{idle: feedIdle, ping: feedPingTimeout},
		ctx:    ctx,
		cancel: cancel,
	}
}

// Close implements store.Store: it ends every Watch, stops the change
// subscription and closes the client.
func (s *Store) Close() error {
	s.mu.Lock()
	already := s.closed.Swap(true)
	s.mu.Unlock()
	if already {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.hub.Close()
	return s.client.Close()
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.Entry, error) {
	if err := s.ready(ctx, key, nil); err != nil {
		return store.Entry{}, err
	}
	vals, err := s.client.HMGet(ctx, s.keys.data+key, "v", "d").Result()
	if err != nil {
		return store.Entry{}, s.fail(ctx, "get", key, err)
	}
	return entryOf(key, vals)
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := s.ready(ctx, key, value); err != nil {
		return 0, err
	}
	v, err := putScript.Run(ctx, s.client, []string{s.keys.data + key},
		expect, value, s.keys.channel, key).Int64()
	switch {
	case err != nil:
		return 0, s.fail(ctx, "put", key, err)
	case v == 0:
		return 0, store.ErrConflict
	}
	return uint64(v), nil
}

// Rewrite implements store.Rewriter.
func (s *Store) Rewrite(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := s.ready(ctx, key, value); err != nil {
		return false, err
	}
	r, err := rewriteScript.Run(ctx, s.client, []string{s.keys.data + key}, old, value).Int64()
	if err != nil {
		return false, s.fail(ctx, "rewrite", key, err)
	}
	return r == 1, nil
}

var _ store.Rewriter = (*Store)(nil)

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expect uint64) error {
	if err := s.ready(ctx, key, nil); err != nil {
		return err
	}
	r, err := deleteScript.Run(ctx, s.client, []string{s.keys.data + key},
		expect, s.keys.channel, key).Int64()
	switch {
	case err != nil:
		return s.fail(ctx, "delete", key, err)
	case r == 0:
		return store.ErrNotFound
	case r < 0:
		return store.ErrConflict
	}
	return nil
}

// Claim implements store.Store with SET NX PX: Redis expires the claim.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := store.CheckClaim(key, ttl); err != nil {
		return false, err
	}
	if err := s.ready(ctx, key, nil); err != nil {
		return false, err
	}
	ok, err := s.client.SetNX(ctx, s.keys.claim+key, "1", ttl).Result()
	if err != nil {
		return false, s.fail(ctx, "claim", key, err)
	}
	return ok, nil
}

// Unclaim implements store.Store.
func (s *Store) Unclaim(ctx context.Context, key string) error {
	if err := s.ready(ctx, key, nil); err != nil {
		return err
	}
	if err := s.client.Del(ctx, s.keys.claim+key).Err(); err != nil {
		return s.fail(ctx, "unclaim", key, err)
	}
	return nil
}

// List implements store.Store. It scans every master of a Cluster.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.ready(ctx, "list", nil); err != nil {
		return nil, err
	}
	keys, err := s.scan(ctx, prefix)
	if err != nil {
		return nil, s.fail(ctx, "list", prefix, err)
	}
	return keys, nil
}

// loadChunk is how many values Load asks for in one round trip.
const loadChunk = 500

// Load implements store.Store: the keys as List finds them, then their
// values, read with pipelined HMGETs of loadChunk keys a round trip. Each
// key is its own command, so on a Cluster the client sends each to the
// node that holds its slot (keys carry no hash tag, so they are spread
// over every node).
func (s *Store) Load(ctx context.Context, prefix string) ([]store.KeyEntry, error) {
	if err := s.ready(ctx, "load", nil); err != nil {
		return nil, err
	}
	keys, err := s.scan(ctx, prefix)
	if err != nil {
		return nil, s.fail(ctx, "load", prefix, err)
	}
	out := make([]store.KeyEntry, 0, len(keys))
	for chunk := range slices.Chunk(keys, loadChunk) {
		cmds := make([]*redis.SliceCmd, len(chunk))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range chunk {
				cmds[i] = p.HMGet(ctx, s.keys.data+k, "v", "d")
			}
			return nil
		})
		if err != nil {
			return nil, s.fail(ctx, "load", prefix, err)
		}
		for i, cmd := range cmds {
			e, err := entryOf(chunk[i], cmd.Val())
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since the scan
			}
			if err != nil {
				return nil, err
			}
			out = append(out, store.KeyEntry{Key: chunk[i], Entry: e})
		}
	}
	return out, nil
}

// entryOf decodes the answer of HMGET v d.
func entryOf(key string, vals []any) (store.Entry, error) {
	ver, ok := vals[0].(string)
	if !ok {
		return store.Entry{}, store.ErrNotFound
	}
	v, err := strconv.ParseUint(ver, 10, 64)
	if err != nil {
		return store.Entry{}, fmt.Errorf("redis: get %q: corrupt version %q", key, ver)
	}
	d, _ := vals[1].(string)
	return store.Entry{Value: []byte(d), Version: v}, nil
}

// scan returns the keys with prefix, sorted, from every master of a
// Cluster.
func (s *Store) scan(ctx context.Context, prefix string) ([]string, error) {
	pattern := globEscape(s.keys.data+prefix) + "*"
	var mu sync.Mutex
	found := make(map[string]struct{}) // a Cluster resharding may show a key twice
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			found[strings.TrimPrefix(it.Val(), s.keys.data)] = struct{}{}
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(found)), nil
}

// globEscape quotes the characters SCAN MATCH treats as wildcards.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ready checks what every call checks before it reaches Redis.
func (s *Store) ready(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := store.CheckStored(key, value); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// fail maps an error from the client to the store's: a done context
// stays recognisable with errors.Is whatever the client made of it, and a
// closed client is ErrClosed.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		// The socket deadline, set to ctx's, fired a moment before ctx's
		// own timer.
		cerr = context.DeadlineExceeded
	}
	switch {
	case cerr != nil && !errors.Is(err, cerr):
		return fmt.Errorf("redis: %s %q: %w (%v)", op, key, cerr, err)
	case errors.Is(err, redis.ErrClosed) || s.closed.Load():
		return store.ErrClosed
	}
	return fmt.Errorf("redis: %s %q: %w", op, key, err)
}
