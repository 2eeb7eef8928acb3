package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxtoken/wxtoken/store"
)

// Health checking of the change subscription. Pub/sub traffic is rare, so
// silence says nothing: after health.idle without a message the feed
// pings, and a ping unanswered within health.ping means a dead connection,
// which the client then replaces.
const (
	feedIdle        = 15 * time.Second
	feedPingTimeout = 5 * time.Second
	confirmTimeout  = 10 * time.Second // for the first subscription's confirmation
	feedRetryMin    = 100 * time.Millisecond
	feedRetryMax    = time.Second // a returning Redis is noticed within a second
)

// feedHealth holds the health-check intervals, shortened by tests.
type feedHealth struct {
	idle, ping time.Duration
}

// Watch implements store.Watcher. All watches of a Store share one
// subscription to the change channel, started by the first.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: watch: %w", err)
	}
	if err := s.subscribe(ctx); err != nil {
		return nil, err
	}
	return s.hub.Watch(ctx, prefix)
}

// subscribe starts the change subscription unless it runs, and returns
// once Redis has confirmed it: from then on every write is announced to
// it, so a Watch that returns after it misses nothing it should see.
func (s *Store) subscribe(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	if s.feeding {
		return nil
	}
	ps := s.client.Subscribe(ctx)
	err := ps.Subscribe(ctx, s.keys.channel)
	if err == nil {
		err = confirmed(ctx, ps)
	}
	if err != nil {
		ps.Close()
		return s.fail(ctx, "watch", s.keys.channel, err)
	}
	s.feeding = true
	s.wg.Add(1)
	go s.feed(ps)
	return nil
}

// confirmed waits for the confirmation of the subscription.
func confirmed(ctx context.Context, ps *redis.PubSub) error {
	msg, err := ps.ReceiveTimeout(ctx, confirmTimeout)
	if err != nil {
		return err
	}
	if sub, ok := msg.(*redis.Subscription); !ok || sub.Kind != "subscribe" {
		return fmt.Errorf("subscribe answered %v", msg)
	}
	return nil
}

// feed passes the subscription's messages to the watchers until Close. It
// owns ps. A confirmation after the first means the client reconnected,
// and messages published meanwhile are lost: watchers get "".
func (s *Store) feed(ps *redis.PubSub) {
	defer s.wg.Done()
	stop := context.AfterFunc(s.ctx, func() { ps.Close() }) // ends a blocked receive
	defer func() {
		stop()
		ps.Close()
	}()
	for s.ctx.Err() == nil {
		if s.feedSafely(ps) {
			return
		}
		s.hub.NotifyAll() // a panic may have eaten a message
		if !s.sleep(feedRetryMax) {
			return
		}
	}
}

// feedSafely runs the feed loop, recovering from a panic, which it logs
// and reports by returning false.
func (s *Store) feedSafely(ps *redis.PubSub) (done bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("redis: change feed panicked; restarting", "panic", p)
			done = false
		}
	}()
	s.feedLoop(ps)
	return true
}

func (s *Store) feedLoop(ps *redis.PubSub) {
	var (
		pinged bool // a ping is unanswered
		lost   bool // the connection failed; not yet resubscribed
		wait   = feedRetryMin
	)
	for {
		msg, err := s.receive(ps, pinged)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !pinged && isTimeout(err) {
				// Idle: ask the server for a sign of life. A failed
				// write drops the connection; the next receive redials.
				ps.Ping(s.ctx)
				pinged = true
				continue
			}
			if !lost {
				s.log.Warn("redis: change notifications interrupted; reconnecting", "err", err)
				lost = true
			}
			pinged = false
			if !s.sleep(wait) {
				return
			}
			wait = min(2*wait, feedRetryMax)
			continue
		}
		pinged, wait = false, feedRetryMin
		switch m := msg.(type) {
		case *redis.Message:
			s.hub.Notify(m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if lost {
					s.log.Info("redis: change notifications resumed")
					lost = false
				}
				s.hub.NotifyAll()
			}
		}
	}
}

// receive reads the subscription's next message. Waiting for an answer to
// a ping, it reads under a deadline whose expiry the client takes for a
// broken connection, closing it so that the next receive reconnects;
// otherwise an expiry is only idleness.
func (s *Store) receive(ps *redis.PubSub, pinged bool) (any, error) {
	if !pinged {
		return ps.ReceiveTimeout(s.ctx, s.health.idle)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.health.ping)
	defer cancel()
	return ps.Receive(ctx)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sleep waits d, or returns false once the store is closing.
func (s *Store) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}
