package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// hubBuffer is how many notifications a subscriber's queue holds for a
// reader that is busy elsewhere; one that falls further behind gets ""
// instead of the backlog, and re-reads everything. Writes are mostly rare
// (a token every hour or two per credential), but a platform importing
// thousands of authorizers writes thousands of records a second, in
// bursts of group commits: with room for only 64, the reader fell behind
// at every burst, and a re-read of 100,000 records, far more work than
// the backlog, made it fall behind again. 4096 keys are some 64 KB.
const hubBuffer = 4096

// Hub fans change notifications out to the Watch subscribers of one
// process. A store whose writers all live in this process calls Notify
// after each successful write; a shared store feeds it from the backend's
// own notifications and calls NotifyAll when some may have been lost. The
// zero value is ready to use.
//
// Notify and NotifyAll never block: they queue, and each subscriber has a
// goroutine that delivers its queue. When a queue overflows it is replaced
// by a single "", which covers every key dropped and every key notified
// until that "" is on its way to the reader.
type Hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	done   chan struct{} // closed by Close
	closed bool
	wg     sync.WaitGroup // one per subscriber's goroutine
}

type subscriber struct {
	prefix string
	ch     chan string   // only serve sends, and closes it
	queue  []string      // keys to deliver, at most hubBuffer
	reset  bool          // "" is to be delivered before the queue
	wake   chan struct{} // capacity 1: the queue is no longer empty
}

var _ Watcher = (*Hub)(nil)

// Watch implements Watcher for the writes reported to h.
func (h *Hub) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: watch: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	h.init()
	s := &subscriber{prefix: prefix, ch: make(chan string), wake: make(chan struct{}, 1)}
	h.subs[s] = struct{}{}
	h.wg.Add(1)
	go h.serve(ctx, s)
	return s.ch, nil
}

// init makes the zero value usable; h.mu must be held.
func (h *Hub) init() {
	if h.subs == nil {
		h.subs = make(map[*subscriber]struct{})
		h.done = make(chan struct{})
	}
}

// serve owns s: it delivers s's queue as fast as its reader reads, and
// ends s, closing its channel, when ctx is done or h is closed.
func (h *Hub) serve(ctx context.Context, s *subscriber) {
	defer h.wg.Done()
	defer close(s.ch)
	defer func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}()
	for {
		next, ok := h.pop(s)
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			case <-h.done:
				return
			}
		}
		select {
		case s.ch <- next:
		case <-ctx.Done():
			return
		case <-h.done:
			return
		}
	}
}

// pop takes the next notification to deliver to s, if any.
func (h *Hub) pop(s *subscriber) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case s.reset:
		s.reset = false
		return "", true
	case len(s.queue) > 0:
		next := s.queue[0]
		s.queue = s.queue[1:]
		return next, true
	}
	return "", false
}

// Notify reports a successful write of key to the subscribers whose
// prefix it has.
func (h *Hub) Notify(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if strings.HasPrefix(key, s.prefix) {
			s.push(key)
		}
	}
}

// NotifyAll tells every subscriber that anything may have changed, as
// after a lost connection to a shared backend.
func (h *Hub) NotifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.push("")
	}
}

// push queues key for s; h.mu must be held. A pending "" covers key: the
// reader will take it, and re-read, after key was written.
func (s *subscriber) push(key string) {
	switch {
	case s.reset:
		return
	case key == "" || len(s.queue) == hubBuffer:
		s.reset, s.queue = true, nil
	default:
		s.queue = append(s.queue, key)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close ends every subscription, closing its channel, and waits for the
// goroutines that served them. Notifications not yet delivered are
// dropped. Watch after Close returns ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		h.init()
		close(h.done)
	}
	h.mu.Unlock()
	h.wg.Wait()
}
