package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// maxAnswer bounds what is read of a destination's answer.
const maxAnswer = 256 << 10

// leaseTTL is how long a lane's lease outlives its holder's last sign of
// life (beyond a delivery's timeout): how long a lane waits when the
// instance delivering it dies.
const leaseTTL = 15 * time.Second

// loop delivers until ctx is done: it reads the queue whenever a write is
// reported or a delivery is due, and at least every Poll, since reports
// may be lost.
func (g *Gateway) loop(ctx context.Context) {
	defer close(g.done)
	changes, err := g.st.Watch(ctx, queuePrefix)
	if err != nil {
		g.log.Warn("gateway: queue changes are not reported; reading it every poll", "err", err)
	}
	nextGC := g.cfg.Now()
	for {
		next := g.safeScan(ctx)
		if now := g.cfg.Now(); !now.Before(nextGC) {
			g.collectReplies(ctx)
			nextGC = now.Add(min(g.cfg.DedupWindow/2, time.Minute))
		}
		wait := g.cfg.Poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(g.cfg.Now()), time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		case <-g.nudge:
		case <-t.C:
		}
		t.Stop()
	}
}

// safeScan is scan, recovering a panic so that one bad entry does not end
// every delivery.
func (g *Gateway) safeScan(ctx context.Context) (next time.Time) {
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("gateway: scanning the queue panicked", "panic", p)
		}
	}()
	return g.scan(ctx)
}

// scan starts a delivery of every lane whose first entry is due and that
// this instance is not delivering already. It returns when the next entry
// not yet due will be (zero: none waits).
func (g *Gateway) scan(ctx context.Context) (next time.Time) {
	keys, err := g.st.List(ctx, queuePrefix)
	if err != nil {
		if ctx.Err() == nil {
			g.log.Warn("gateway: reading the queue", "err", err)
		}
		return time.Time{}
	}
	now := g.cfg.Now()
	for i := 0; i < len(keys); {
		l := laneOf(strings.TrimPrefix(keys[i], queuePrefix))
		j := i + 1
		for j < len(keys) && laneOf(strings.TrimPrefix(keys[j], queuePrefix)) == l {
			j++
		}
		lane := keys[i:j:j]
		i = j
		g.mu.Lock()
		busy := g.busy[l]
		g.mu.Unlock()
		if busy {
			continue
		}
		e, err := g.st.Get(ctx, lane[0])
		if err != nil {
			continue // delivered meanwhile, or the store is away: the next scan sees
		}
		en, err := decodeEntry(e.Value)
		if err == nil && en.NextAt.After(now) {
			if next.IsZero() || en.NextAt.Before(next) {
				next = en.NextAt
			}
			continue
		}
		select {
		case g.sem <- struct{}{}:
		default:
			return now.Add(10 * time.Millisecond) // every worker is busy: come back soon
		}
		g.mu.Lock()
		g.busy[l] = true
		g.mu.Unlock()
		g.lanes.Add(1)
		go g.runLane(ctx, l, lane)
	}
	return next
}

// runLane delivers the lane's entries under keys in order, under the
// lane's lease so that one instance of those sharing the store delivers
// them, until one fails or is not due. Entries queued since keys were
// listed wait for the next scan: a listing is a pass over the whole store
// (Redis has no ordered prefix scan; 150 ms with 100,000 other keys), so
// the scan's one listing serves every lane.
func (g *Gateway) runLane(ctx context.Context, l string, keys []string) {
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("gateway: delivering panicked", "lane", l, "panic", p)
		}
		g.mu.Lock()
		delete(g.busy, l)
		g.mu.Unlock()
		<-g.sem
		g.lanes.Done()
		g.poke()
	}()
	// Another instance delivering the lane holds its lease: wait a
	// little for it (it may be done soon), else leave the lane to it.
	// The wait is not short: a Lock cut off while its write is in
	// flight may leave the lease taken and nobody to release it, which
	// stalls the lane for leaseTTL.
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	lease, err := g.st.Lock(lctx, "gw/lane/"+l, leaseTTL)
	cancel()
	if err != nil {
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lease.Unlock(uctx)
	}()
	for _, key := range keys {
		if ctx.Err() != nil || !g.deliverEntry(ctx, key, lease) {
			return
		}
	}
}

// deliverEntry delivers the entry under key if it is due, and reports
// whether the next of its lane may follow at once.
func (g *Gateway) deliverEntry(ctx context.Context, key string, lease store.Lease) bool {
	se, err := g.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return true // re-driven or delivered by a peer before our lease
	}
	if err != nil {
		return false
	}
	e, err := decodeEntry(se.Value)
	if err != nil {
		return g.bury(ctx, key, se, se.Value) // kept as it was, to be looked at
	}
	now := g.cfg.Now()
	if e.NextAt.After(now) {
		return false
	}
	r, ok := g.rules[e.Credential][e.Rule]
	if !ok {
		return g.buryEntry(ctx, key, se, e, "no rule "+e.Rule+" is configured for credential "+e.Credential)
	}
	if r.Reply() {
		return g.buryEntry(ctx, key, se, e, "rule "+e.Rule+" is now a reply rule, which is never queued")
	}
	// The lease must outlast the attempt, or a peer could deliver the
	// entry while it is in flight.
	if err := lease.Extend(ctx, r.timeout()+leaseTTL); err != nil {
		return false
	}
	err = g.post(ctx, r, e)
	if ctx.Err() != nil {
		return false // closing: the entry stays as it was
	}
	if err == nil {
		g.count.deliveries.WithLabelValues(e.Credential, e.Rule, "ok").Inc()
		if err := g.st.Delete(ctx, key, se.Version); err != nil && !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("gateway: delivered, but not taken off the queue: it will be delivered again", "rule", e.Rule, "id", e.ID, "err", err)
			return false
		}
		return true
	}
	e.Attempts++
	e.LastError = err.Error()
	if now := g.cfg.Now(); now.Sub(e.QueuedAt) >= g.cfg.DeadAfter {
		g.count.deliveries.WithLabelValues(e.Credential, e.Rule, "dead").Inc()
		g.log.Warn("gateway: a message became a dead letter", "credential", e.Credential, "rule", e.Rule, "id", e.ID, "attempts", e.Attempts, "err", err)
		return g.buryEntry(ctx, key, se, e, e.LastError)
	}
	g.count.deliveries.WithLabelValues(e.Credential, e.Rule, "retry").Inc()
	e.NextAt = g.cfg.Now().Add(g.backoff(e.Attempts))
	g.log.Info("gateway: delivery failed, retrying", "credential", e.Credential, "rule", e.Rule, "id", e.ID, "attempts", e.Attempts, "retry_at", e.NextAt, "err", err)
	if v, err := json.Marshal(e); err == nil {
		g.st.Put(ctx, key, v, se.Version)
	}
	return false
}

// backoff is the wait before attempt n+1: a second doubled per attempt,
// capped at MaxBackoff, less up to a tenth at random so that the retries
// of many lanes spread out.
func (g *Gateway) backoff(n int) time.Duration {
	d := g.cfg.MaxBackoff
	if n < 30 {
		d = min(time.Second<<(n-1), d)
	}
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

// bury moves an entry, stored as v, to the dead letters, and reports
// whether it left the queue.
func (g *Gateway) bury(ctx context.Context, key string, se store.Entry, v []byte) bool {
	dead := deadPrefix + strings.TrimPrefix(key, queuePrefix)
	if _, err := g.st.Put(ctx, dead, v, 0); err != nil && !errors.Is(err, store.ErrConflict) {
		g.log.Warn("gateway: dead letter not stored; the entry stays queued", "key", key, "err", err)
		return false
	}
	if err := g.st.Delete(ctx, key, se.Version); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false
	}
	return true
}

// buryEntry buries e with the reason why.
func (g *Gateway) buryEntry(ctx context.Context, key string, se store.Entry, e Entry, why string) bool {
	e.LastError = why
	v, err := json.Marshal(e)
	if err != nil {
		return false
	}
	return g.bury(ctx, key, se, v)
}

// post makes one delivery attempt: nil for a 2xx.
func (g *Gateway) post(ctx context.Context, r Rule, e Entry) error {
	status, _, err := g.send(ctx, r, source(e.Credential, e.Authorizer), e.Delivery, e.Body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("destination answered %d", status)
	}
	return nil
}

// send POSTs body to r's destination with the contract's headers and
// returns its status and answer.
func (g *Gateway) send(ctx context.Context, r Rule, credential, delivery string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.To, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderCredential, credential)
	req.Header.Set(HeaderDelivery, delivery)
	req.Header.Set(HeaderSignature, Sign(r.Secret, g.cfg.Now(), body))
	resp, err := g.cfg.HTTP.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // its URL may carry credentials
		}
		return 0, nil, fmt.Errorf("posting to %s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the answer of %s: %w", r.Name, err)
	}
	return resp.StatusCode, answer, nil
}
