package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/store"
)

// Config configures a Gateway. Zero values mean the defaults.
type Config struct {
	// Store holds the queue, the dead letters, the message ids seen and
	// the replies given; shared by every instance.
	Store store.Store
	// Routes are the rules of each credential, by credential id.
	Routes map[string][]Rule
	// HTTP posts to destinations; each delivery is bounded by its rule's
	// timeout. Nil: a client of the gateway's own.
	HTTP *http.Client
	// Logger logs deliveries that fail; slog.Default() if nil.
	Logger *slog.Logger
	// DedupWindow is how long a message id is remembered (default 10m).
	DedupWindow time.Duration
	// DeadAfter is how long an entry is retried before it becomes a
	// dead letter (default 24h).
	DeadAfter time.Duration
	// MaxBackoff caps the wait between retries (default 5m).
	MaxBackoff time.Duration
	// Workers is how many lanes (destination and user) are delivered at
	// once by this instance (default 16).
	Workers int
	// Poll is how often the queue is read again without a change being
	// reported (default 1s).
	Poll time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Registerer, if set, takes the gateway's metrics.
	Registerer prometheus.Registerer
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{}
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = 10 * time.Minute
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = 24 * time.Hour
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Gateway receives decrypted pushes and delivers them. Its methods are
// safe for concurrent use.
type Gateway struct {
	cfg    Config
	st     store.Store
	log    *slog.Logger
	rules  map[string]map[string]Rule // by credential, then name
	stop   context.CancelFunc
	done   chan struct{}
	nudge  chan struct{}
	sem    chan struct{}
	mu     sync.Mutex
	busy   map[string]bool // lanes being delivered by this instance
	lanes  sync.WaitGroup
	closed sync.Once
	count  *counters
}

// New makes a Gateway and starts its delivery loop, which Close stops.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil {
		return nil, errors.New("gateway: no store")
	}
	cfg.defaults()
	g := &Gateway{cfg: cfg, st: cfg.Store, log: cfg.Logger, rules: map[string]map[string]Rule{},
		done: make(chan struct{}), nudge: make(chan struct{}, 1), sem: make(chan struct{}, cfg.Workers),
		busy: map[string]bool{}, count: newCounters(cfg.Registerer)}
	for cred, list := range cfg.Routes {
		g.rules[cred] = map[string]Rule{}
		for _, r := range list {
			g.rules[cred][r.Name] = r
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	g.stop = stop
	go g.loop(ctx)
	return g, nil
}

// Close stops the delivery loop and waits for deliveries in flight to end;
// what they had not acknowledged stays queued.
func (g *Gateway) Close() error {
	g.closed.Do(func() {
		g.stop()
		<-g.done
		g.lanes.Wait()
	})
	return nil
}

// Has reports whether credential has rules.
func (g *Gateway) Has(credential string) bool { return len(g.rules[credential]) > 0 }

// Receive takes a push's plaintext for credential, already verified and
// decrypted; authorizer is the appid of the platform's authorizer the
// message is for, "" for the credential's own messages and events.
// Before it returns, the message is queued durably for every queue rule
// it matches; the reply rule, if one matches, is asked for the passive
// reply, which Receive returns (nil: answer "success"). A message whose
// id was received within the dedup window is neither queued nor asked
// again: the reply given to it then, if any, is returned.
//
// Errors wrap ErrMessage for a plaintext that is no message; any other
// error means the message was not accepted and WeChat should deliver it
// again (a rule it was queued for before the error may get it twice).
func (g *Gateway) Receive(ctx context.Context, credential, authorizer string, plain []byte) ([]byte, error) {
	m, err := Parse(plain)
	if err != nil {
		return nil, err
	}
	m.Authorizer = authorizer
	rules := g.rules[credential]
	seen := "gw/seen/" + credential + "/" + digest(m.key())
	// Two claims: seen, taken before the queue entries are written, makes
	// WeChat's retries of a message being queued wait their turn; queued,
	// taken after, says the entries are there. A retry that finds seen
	// taken but not queued comes after a crash between the two (or, far
	// rarer, during a first attempt slower than WeChat's retry): it queues
	// the message again, so a crash there delivers twice rather than never.
	queued := "gw/queued/" + credential + "/" + digest(m.key())
	fresh, err := g.st.Claim(ctx, seen, g.cfg.DedupWindow)
	if err == nil && !fresh {
		// Asked without keeping it: a crash before the entries are
		// written must leave it free for the next retry.
		var unqueued bool
		if unqueued, err = g.st.Claim(ctx, queued, g.cfg.DedupWindow); err == nil && unqueued {
			err = g.st.Unclaim(ctx, queued)
			fresh = true
		}
	}
	if err != nil {
		g.count.received.WithLabelValues(credential, "refused").Inc()
		return nil, fmt.Errorf("gateway: checking message %s: %w", m.ID, err)
	}
	if !fresh {
		// WeChat delivers a push again when our answer was slow or lost:
		// the same answer, without asking the destination again.
		g.count.received.WithLabelValues(credential, "duplicate").Inc()
		reply := g.cachedReply(ctx, credential, m)
		if reply != nil {
			g.count.replies.WithLabelValues(credential, "cached").Inc()
		}
		return reply, nil
	}
	now := g.cfg.Now()
	var reply *Rule
	for _, r := range sortedRules(rules) {
		if !r.Matches(m, authorizer) {
			continue
		}
		if r.Reply() {
			reply = &r
			continue
		}
		if err := g.enqueue(ctx, credential, r, m, now); err != nil {
			g.unclaim(seen)
			g.count.received.WithLabelValues(credential, "refused").Inc()
			return nil, err
		}
	}
	if _, err := g.st.Claim(ctx, queued, g.cfg.DedupWindow); err != nil {
		// The entries are written: a retry that cannot see this mark
		// queues them again, which delivers twice, never loses.
		g.log.Warn("message queued, but not marked so: a retry of it will be delivered again", "id", m.ID, "err", err)
	}
	g.count.received.WithLabelValues(credential, "queued").Inc()
	if reply == nil {
		return nil, nil
	}
	return g.askReply(ctx, credential, *reply, m, now), nil
}

// unclaim forgets a message that could not be queued, so that WeChat's
// next delivery of it is accepted.
func (g *Gateway) unclaim(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.st.Unclaim(ctx, key); err != nil {
		g.log.Warn("message not queued, and its id stays claimed: WeChat's next delivery of it will be dropped", "key", key, "err", err)
	}
}

// digest shortens an id for a key; ids are WeChat's and bounded, but a
// key must not carry what a push may choose freely.
func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}

// poke asks the loop to read the queue again.
func (g *Gateway) poke() {
	select {
	case g.nudge <- struct{}{}:
	default:
	}
}
