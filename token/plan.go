package token

import (
	"math/rand/v2"
	"sync"
	"time"
)

// planner turns lifetimes and failures into times, with jitter. It is the
// only place randomness enters the scheduler.
type planner struct {
	at, jitter  float64
	baseBackoff time.Duration
	maxBackoff  time.Duration
	mu          sync.Mutex
	rand        *rand.Rand
}

// float returns a uniform value in [-1, 1).
func (p *planner) float() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rand.Float64()*2 - 1
}

// refreshAt plans the proactive refresh of a token issued at issued and
// valid until expires, at a jittered fraction of what is left of its life.
// For a fresh token that is the fraction of its lifetime; a stable token
// fetched again unchanged is planned over its remaining life, converging
// on the moment WeChat renews it. Either way the plan leaves at least one
// safety margin before the token stops being served (itself a margin
// before expiry), so a refresh never starts after its token is withdrawn.
func (p *planner) refreshAt(now, issued, expires time.Time) time.Time {
	left := expires.Sub(now)
	frac := p.at + p.jitter*p.float()
	d := time.Duration(float64(left) * frac)
	safe := left - 2*margin(expires.Sub(issued))
	d = min(d, safe)
	if d < time.Second {
		// Near the end of a token's life (a stable token fetched again
		// unchanged): at most a second away, never past the safe point;
		// a short floor keeps a source that keeps answering the same
		// dying token from being called in a tight loop.
		d = max(min(time.Second, safe), 200*time.Millisecond)
	}
	return now.Add(d)
}

// backoff is the wait before retry number n (1-based) of a transient
// failure: exponential from baseBackoff, capped by maxBackoff and, while a
// token is still valid, by a quarter of its remaining life so several
// attempts fit before it expires; then jittered by ±20% so that many
// credentials failing together do not retry together.
func (p *planner) backoff(n int, now, expires time.Time) time.Duration {
	limit := p.maxBackoff
	if left := expires.Sub(now); left > 0 {
		limit = min(limit, max(left/4, p.baseBackoff))
	}
	d := p.baseBackoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (1 + 0.2*p.float()))
}

// spread returns d jittered by ±10%.
func (p *planner) spread(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + 0.1*p.float()))
}

// margin is how long before a token's expiry we stop handing it out: a
// caller needs time to use it. It scales with the lifetime (1/120th:
// a minute for 7200 s) within [1 s, 1 min].
func margin(lifetime time.Duration) time.Duration {
	return min(max(lifetime/120, time.Second), time.Minute)
}
