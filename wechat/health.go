package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// defaultHealthInterval is RunHealthChecks' interval when given none.
const defaultHealthInterval = 30 * time.Second

// maxProbeBody bounds what is read of a health check's answer, a short
// JSON error.
const maxProbeBody = 64 << 10

// probeResult is what one health check learned of one host.
type probeResult struct {
	reachable bool   // some answer came back
	healthy   bool   // a JSON answer, not a 5xx status
	err       string // why not healthy
}

// CheckHealth checks every API host once, all at the same time, and
// records what it finds (see Upstreams). A check is GET
// /cgi-bin/getcallbackip without a token: any JSON answer below HTTP 500,
// such as errcode 41001 (token missing), proves the host reachable and
// healthy; it costs no quota and carries no secret.
//
// Then, if calls have moved off the primary (API) and the primary is
// healthy again, calls move back to it. If instead the active host could
// not be reached at all, calls move to the first healthy host, as a call
// that could not reach it would have done; a host answering 5xx keeps its
// calls, as it does for a call.
//
// ctx bounds the checks; a host that has not answered by its deadline is
// unreachable. If ctx is cancelled, what the round learned is dropped.
func (c *Client) CheckHealth(ctx context.Context) {
	u := c.upstreams()
	results := make([]probeResult, len(u.urls))
	var wg sync.WaitGroup
	for i, base := range u.urls {
		wg.Go(func() { results[i] = c.probe(ctx, base) })
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	u.checked(results, time.Now())
}

// probe checks one host.
func (c *Client) probe(ctx context.Context, base string) probeResult {
	resp, err := c.send(ctx, http.MethodGet, base+"/cgi-bin/getcallbackip", nil)
	if err != nil {
		err = transportError(err)
		return probeResult{reachable: !unreachable(err), err: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	switch {
	case resp.StatusCode >= 500:
		return probeResult{reachable: true, err: fmt.Sprintf("HTTP status %d", resp.StatusCode)}
	case err != nil:
		return probeResult{reachable: true, err: "reading answer: " + transportError(err).Error()}
	case !json.Valid(data):
		return probeResult{reachable: true, err: fmt.Sprintf("HTTP status %d with an answer that is not JSON", resp.StatusCode)}
	}
	return probeResult{reachable: true, healthy: true}
}

// checked records a round of health checks ended at now and moves calls
// as CheckHealth describes.
func (u *upstreams) checked(results []probeResult, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, r := range results {
		u.hosts[i] = hostState{healthy: r.healthy, lastCheck: now, lastErr: r.err, failovers: u.hosts[i].failovers}
	}
	if u.active != 0 && results[0].healthy {
		u.activate(0)
		return
	}
	if results[u.active].reachable {
		return
	}
	for i, r := range results {
		if r.healthy {
			u.hosts[u.active].failovers++
			u.activate(i)
			return
		}
	}
}

// RunHealthChecks runs CheckHealth at once and then every interval, ±10%
// so that many servers do not check in step, until ctx is done. A
// non-positive every means 30 seconds. Each round is bounded by the
// interval. It runs on the caller's goroutine and starts none that
// outlive a round: the caller owns it and stops it by cancelling ctx.
func (c *Client) RunHealthChecks(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = defaultHealthInterval
	}
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var t *time.Timer
	for {
		round, cancel := context.WithTimeout(ctx, every)
		c.CheckHealth(round)
		cancel()
		if t == nil {
			t = time.NewTimer(jitter(every, r.Float64()))
			defer t.Stop()
		} else {
			t.Reset(jitter(every, r.Float64()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// jitter spreads d by ±10%, f being uniform in [0, 1).
func jitter(d time.Duration, f float64) time.Duration {
	return d + time.Duration((f*2-1)*0.1*float64(d))
}
