package token

import (
	"container/heap"
	"sync"
	"time"
)

// Every credential's next planned refresh waits in one heap, ordered by
// time, served by one goroutine with one timer, which hands each refresh
// to the due queue when its time comes. A timer per credential
// (time.AfterFunc) cost a runtime timer and a closure for each, some 130
// bytes held by each of a platform's 100,000 authorizers, and a new pair
// every time a credential was re-planned.

// wakeups is the heap of planned refreshes.
type wakeups struct {
	mu      sync.Mutex
	byTime  wakeHeap
	kick    chan struct{} // capacity 1: the earliest wakeup changed
	running bool          // the goroutine serving the heap runs
}

// wakeHeap orders entries by wakeAt; each entry's wakeIdx is its index,
// -1 when it is not in the heap. Both are guarded by wakeups.mu.
type wakeHeap []*entry

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].wakeAt < h[j].wakeAt }
func (h wakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].wakeIdx, h[j].wakeIdx = int32(i), int32(j)
}
func (h *wakeHeap) Push(x any) {
	e := x.(*entry)
	e.wakeIdx = int32(len(*h))
	*h = append(*h, e)
}
func (h *wakeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.wakeIdx = -1
	return e
}

// wakeAt plans e's refresh at t, replacing the time planned before. The
// serving goroutine is started with the first plan; it ends when the
// Manager closes.
func (m *Manager) wakeAt(e *entry, t time.Time) {
	w := &m.wake
	w.mu.Lock()
	e.wakeAt = t.UnixNano()
	if e.wakeIdx >= 0 {
		heap.Fix(&w.byTime, int(e.wakeIdx))
	} else {
		heap.Push(&w.byTime, e)
	}
	first := w.byTime[0] == e
	start := !w.running
	if start {
		w.running = true
		w.kick = make(chan struct{}, 1)
	}
	kick := w.kick
	w.mu.Unlock()
	if start {
		if !m.enter() {
			return
		}
		go m.serveWakeups(kick)
		return
	}
	if first {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// unwake takes e's planned refresh out of the heap, if it is there.
func (m *Manager) unwake(e *entry) {
	w := &m.wake
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.wakeIdx >= 0 {
		heap.Remove(&w.byTime, int(e.wakeIdx))
	}
}

// serveWakeups hands each planned refresh to the due queue when its time
// comes, until the Manager closes.
func (m *Manager) serveWakeups(kick <-chan struct{}) {
	defer m.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := m.dueWakeups()
		timer.Reset(wait)
		select {
		case <-m.ctx.Done():
			return
		case <-kick:
		case <-timer.C:
		}
	}
}

// dueWakeups queues every refresh whose time has come and returns how long
// until the next one.
func (m *Manager) dueWakeups() time.Duration {
	w := &m.wake
	for {
		w.mu.Lock()
		if len(w.byTime) == 0 {
			w.mu.Unlock()
			return time.Hour // until a plan kicks
		}
		e := w.byTime[0]
		if wait := time.Duration(e.wakeAt - time.Now().UnixNano()); wait > 0 {
			w.mu.Unlock()
			return wait
		}
		heap.Pop(&w.byTime)
		w.mu.Unlock()
		m.due(e)
	}
}
