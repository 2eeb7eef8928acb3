package server

import (
	"sync"
	"time"
)

// nonces remembers the nonces of accepted pushes for the timestamp window,
// so a recorded push cannot be delivered again while its timestamp would
// still pass. Only signed pushes reach it, so its size is bounded by what
// WeChat sends, and it is capped anyway.
type nonces struct {
	mu     sync.Mutex
	seen   map[string]time.Time // key → when it may be forgotten
	window time.Duration
	adds   int
}

const maxNonces = 100_000

func newNonces(window time.Duration) *nonces {
	return &nonces{seen: make(map[string]time.Time), window: window}
}

// add records key and reports false if it was already recorded.
func (n *nonces) add(key string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if until, ok := n.seen[key]; ok && now.Before(until) {
		return false
	}
	if n.adds++; n.adds%1024 == 0 || len(n.seen) >= maxNonces {
		for k, until := range n.seen {
			if !now.Before(until) {
				delete(n.seen, k)
			}
		}
	}
	if len(n.seen) < maxNonces {
		// A timestamp may be window old or window ahead: remember the
		// nonce until it cannot pass again.
		n.seen[key] = now.Add(2 * n.window)
	}
	return true
}

// forget drops key, for a push that was refused after it was recorded and
// that WeChat will deliver again.
func (n *nonces) forget(key string) {
	n.mu.Lock()
	delete(n.seen, key)
	n.mu.Unlock()
}
