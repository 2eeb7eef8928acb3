package token

import "sync"

// Planned refreshes that fall due wait in one queue, and at most
// Concurrency goroutines take them from it, one at a time. A goroutine
// per due credential, waiting for an upstream slot, costs its stack
// (some 10 to 30 KB once a refresh has run in it) for as long as it
// waits: when a platform imports 100,000 authorizers faster than WeChat
// answers, that was gigabytes, and the runtime keeps every goroutine's
// descriptor for good. Queued, a due credential costs a slice slot.
// Refreshes that callers wait for (reports, forced refreshes, Await) do
// not queue here.

// dueQueue holds the credentials whose planned refresh is due, in the
// order they fell due.
type dueQueue struct {
	mu      sync.Mutex
	items   []*entry
	head    int // items[head:] are waiting
	workers int // goroutines taking from the queue
}

// due queues e's planned refresh, starting a worker if fewer than
// Concurrency are running. It is the refresh timer's callback.
func (m *Manager) due(e *entry) {
	q := &m.dueq
	q.mu.Lock()
	if e.queued {
		q.mu.Unlock()
		return
	}
	e.queued = true
	q.items = append(q.items, e)
	start := q.workers < m.cfg.Concurrency
	if start {
		q.workers++
	}
	q.mu.Unlock()
	if !start {
		return
	}
	if !m.enter() {
		q.mu.Lock()
		q.workers--
		q.mu.Unlock()
		return
	}
	go m.work()
}

// work runs queued refreshes until the queue is empty. Once the Manager
// is closed, tick returns at once, so the queue drains without refreshing.
func (m *Manager) work() {
	defer m.wg.Done()
	for {
		e := m.dueq.pop()
		if e == nil {
			return
		}
		m.tick(e)
	}
}

// pop takes the next due credential, or returns nil, and stops counting
// the caller as a worker, when there is none.
func (q *dueQueue) pop() *entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
		q.workers--
		return nil
	}
	e := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	e.queued = false
	if q.head >= 1024 && q.head*2 >= len(q.items) {
		// Reuse the front of the array rather than grow it for ever
		// under a steady load.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return e
}
