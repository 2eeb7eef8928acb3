package ui

import (
	"sync"
	"time"
)

// throttle bounds failed logins per remote address: past max failures
// within a window, logins from that address are refused without looking
// at the key until the window ends. A guesser gets a few keys a minute;
// an operator who mistyped waits a minute at most.
type throttle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string]*failures
}

type failures struct {
	since time.Time
	count int
}

// maxTracked bounds the addresses remembered: past it, windows that
// ended are dropped, and if none has, the table starts afresh (an
// attacker with that many addresses is not slowed by a per-address
// limit anyway).
const maxTracked = 10000

// allowed reports whether addr may try a key now.
func (t *throttle) allowed(addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.failures[addr]
	if f == nil {
		return true
	}
	if t.now().Sub(f.since) >= t.window {
		delete(t.failures, addr)
		return true
	}
	return f.count < t.max
}

// failed counts a failed login from addr.
func (t *throttle) failed(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.failures[addr]
	if f == nil || now.Sub(f.since) >= t.window {
		if len(t.failures) >= maxTracked {
			t.prune(now)
		}
		f = &failures{since: now}
		t.failures[addr] = f
	}
	f.count++
}

func (t *throttle) prune(now time.Time) {
	for a, f := range t.failures {
		if now.Sub(f.since) >= t.window {
			delete(t.failures, a)
		}
	}
	if len(t.failures) >= maxTracked {
		t.failures = map[string]*failures{}
	}
}
