package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"
)

// tokenPath is the request every worker sends.
const tokenPath = "/v1/tokens/" + credID

// target is one server under load.
type target struct {
	name string
	url  string // base URL
	key  string // bearer key, sent to both so requests are the same
	size int    // the body size every answer must have
}

// loader loads one target. It keeps its workers, and so their connections,
// from one round to the next.
type loader struct {
	target  target
	workers []*worker
	all     []time.Duration // latencies of a round, merged for sorting
}

// worker is one connection and the goroutine that drives it. Each has a
// Transport of its own, so workers never wait on a shared pool and each
// keeps exactly one keep-alive connection.
type worker struct {
	tr   *http.Transport
	req  *http.Request // sent again and again; RoundTrip does not modify it
	size int
	buf  []byte
	lat  []time.Duration // latencies of the round's good requests
	errs int
	err  error // the round's first error
}

// expectRate sizes the latency buffers, in requests a second over all
// connections; a faster machine only makes them grow once.
const expectRate = 100_000

// newLoader prepares conns workers for t; they connect on first use.
// Requests carry ctx, so ending it ends a round at once.
func newLoader(ctx context.Context, t target, conns int, longest time.Duration) (*loader, error) {
	l := &loader{target: t}
	per := int(expectRate*longest.Seconds())/conns + 1024
	for range conns {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+tokenPath, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+t.key)
		l.workers = append(l.workers, &worker{
			tr: &http.Transport{
				MaxIdleConnsPerHost:   1,
				MaxConnsPerHost:       1,
				DisableCompression:    true,
				ResponseHeaderTimeout: 10 * time.Second,
			},
			req:  req,
			size: t.size,
			buf:  make([]byte, 4<<10),
			lat:  make([]time.Duration, 0, per),
		})
	}
	return l, nil
}

// close closes the workers' connections.
func (l *loader) close() {
	for _, w := range l.workers {
		w.tr.CloseIdleConnections()
	}
}

// round is what one round against one target measured.
type round struct {
	requests int // answered 200 with the expected body
	errors   int
	err      error // the first error
	elapsed  time.Duration
	mallocs  uint64        // heap allocations in the whole process
	cpu      time.Duration // CPU time of the whole process
	p50, p99 time.Duration
	max      time.Duration
}

// rate is the round's throughput in requests a second.
func (r round) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// allocs is the heap allocations per request, of client and server
// together.
func (r round) allocs() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.mallocs) / float64(r.requests)
}

// cpuPerReq is the process's CPU time per request, client and servers
// together: the cost of a request, apart from any time the process
// spent waiting for a CPU that another process held.
func (r round) cpuPerReq() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

// run loads the target with every worker for d and returns what it
// measured. It returns early, with what it has, when ctx ends.
func (l *loader) run(ctx context.Context, d time.Duration) round {
	runtime.GC() // leave the previous round's garbage out of this one
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		end   time.Time // written before start is closed
	)
	for _, w := range l.workers {
		w.lat, w.errs, w.err = w.lat[:0], 0, nil
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("load", l.target.name), func(ctx context.Context) {
				<-start
				w.loop(ctx, end)
			})
		})
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	t0 := time.Now()
	end = t0.Add(d)
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	r := l.collect(elapsed, after.Mallocs-before.Mallocs)
	r.cpu = cpu
	return r
}

// collect merges the workers' results into a round.
func (l *loader) collect(elapsed time.Duration, mallocs uint64) round {
	r := round{elapsed: elapsed, mallocs: mallocs}
	l.all = l.all[:0]
	for _, w := range l.workers {
		l.all = append(l.all, w.lat...)
		r.errors += w.errs
		if r.err == nil && w.err != nil {
			r.err = w.err
		}
	}
	r.requests = len(l.all)
	if r.requests > 0 {
		slices.Sort(l.all)
		r.p50, r.p99, r.max = percentile(l.all, 0.50), percentile(l.all, 0.99), l.all[len(l.all)-1]
	}
	return r
}

// percentile is the nearest-rank q-quantile of sorted, which is not empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// loop sends requests back to back until end, recording the latency of
// each good one.
func (w *worker) loop(ctx context.Context, end time.Time) {
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		err := w.get()
		lat := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted: not the target's fault
			}
			w.errs++
			if w.err == nil {
				w.err = err
			}
			continue
		}
		w.lat = append(w.lat, lat)
	}
}

// get sends one request and reads the whole answer.
func (w *worker) get() error {
	resp, err := w.tr.RoundTrip(w.req)
	if err != nil {
		return err
	}
	n, err := drain(resp.Body, w.buf)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("read body: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %s", resp.Status)
	case n != w.size:
		return fmt.Errorf("body of %d bytes, want %d", n, w.size)
	}
	return nil
}

// drain reads r to its end into buf, over and over, and returns how many
// bytes it read.
func drain(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		m, err := r.Read(buf)
		n += m
		switch err {
		case nil:
		case io.EOF:
			return n, nil
		default:
			return n, err
		}
	}
}
