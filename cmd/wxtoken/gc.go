package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memory.gc_percent is for a large heap: nearly all of it is the state of
// the credentials, which stays live, and the growth the collector allows
// on top of it is memory held for nothing. A small heap is another
// matter: Go's smallest heap goal scales with GOGC (4 MB at 100), so a low
// percent there would collect every few hundred API requests and cost the
// hot path CPU (measured: 0.85 of a bare handler's throughput at 40,
// 0.98 at 100, with one credential) while saving a megabyte or two. So
// the percent applies once the live heap passes smallHeap; below it, Go's
// default of 100 does.

// smallHeap is the live heap under which Go's default GOGC applies.
const smallHeap = 16 << 20

// gcTunePeriod is how often the live heap is looked at.
const gcTunePeriod = 500 * time.Millisecond

// gcTuner sets the collector's percent for the size of the live heap.
// Its goroutine is stopped by stop.
type gcTuner struct {
	quit, done chan struct{}
}

// startGCTuner applies percent as the live heap warrants until stop, and
// does nothing when the GOGC environment variable is set: an operator's
// explicit choice for this process wins.
func startGCTuner(percent int) *gcTuner {
	if _, set := os.LookupEnv("GOGC"); set || percent <= 0 {
		return nil
	}
	t := &gcTuner{quit: make(chan struct{}), done: make(chan struct{})}
	go t.run(percent)
	return t
}

func (t *gcTuner) run(percent int) {
	defer close(t.done)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := -1
	tick := time.NewTicker(gcTunePeriod)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		want := percent
		if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() < smallHeap {
			want = max(percent, 100)
		}
		if want != current {
			debug.SetGCPercent(want)
			current = want
		}
		select {
		case <-tick.C:
		case <-t.quit:
			return
		}
	}
}

// stop ends the tuner's goroutine; the percent stays as it was.
func (t *gcTuner) stop() {
	if t != nil {
		close(t.quit)
		<-t.done
	}
}
