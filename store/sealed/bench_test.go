package sealed

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// idleSource is never called: the seeded tokens are fresh for the whole
// measurement.
type idleSource struct{}

func (idleSource) Fetch(context.Context, token.Request) (token.Fetched, error) {
	return token.Fetched{}, fmt.Errorf("not called")
}

func authorizer(id string) token.Credential {
	return token.Credential{ID: id, Kind: "authorizer", Owner: "platform", Source: idleSource{}}
}

// restoreRecords is how many authorizer records BenchmarkRestore holds.
const restoreRecords = 100_000

// BenchmarkRestore measures what sealing costs a start: a Manager's
// Restore of 100,000 authorizer records (WeChat-sized tokens of about 150
// bytes and refresh tokens) from a bolt file, plain and sealed. Each
// round restores from both files in turn, so that a machine shared with
// other work slows both alike; it reports the median of each, their
// ratio, and the bytes a record takes in each file.
func BenchmarkRestore(b *testing.B) {
	plain, sealed := restoreStores(b)
	restore := func(st store.Store) {
		m, err := token.New(token.Config{Store: st}, nil)
		if err != nil {
			b.Fatal(err)
		}
		n, err := m.Restore(b.Context(), "platform", authorizer)
		m.Close()
		if err != nil || n != restoreRecords {
			b.Fatalf("Restore = %d, %v; want %d", n, err, restoreRecords)
		}
	}
	alternate(b, plain, sealed, restore)
}

// BenchmarkLoad is BenchmarkRestore for the store's Load alone: what
// opening adds to the store's own work.
func BenchmarkLoad(b *testing.B) {
	plain, sealed := restoreStores(b)
	alternate(b, plain, sealed, func(st store.Store) {
		if ents, err := st.Load(b.Context(), "token/"); err != nil || len(ents) != restoreRecords {
			b.Fatalf("Load = %d records, %v", len(ents), err)
		}
	})
}

// restoreStores fills two bolt files with the same authorizer records,
// one plain, one sealed, and reports the bytes a record takes in each.
func restoreStores(b *testing.B) (plain, sealed store.Store) {
	recs := authorizerRecords(b, restoreRecords)
	for _, seal := range []bool{false, true} {
		inner, err := bolt.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { inner.Close() })
		var st store.Store = inner
		name := "plain"
		if seal {
			st, name = New(inner, ring(b, NewKey())), "sealed"
			sealed = st
		} else {
			plain = st
		}
		fill(b, st, recs)
		raw, _ := inner.Load(b.Context(), "token/")
		size := 0
		for _, e := range raw {
			size += len(e.Value)
		}
		b.Cleanup(func() { b.ReportMetric(float64(size)/float64(len(raw)), name+"-bytes/record") })
	}
	return plain, sealed
}

// alternate runs op on plain and on sealed in turn each round and
// reports the median durations and their ratio.
// It also reports the median CPU time the process spent (all threads,
// the collector's included), which other work on the machine disturbs
// less than the wall clock.
func alternate(b *testing.B, plain, sealed store.Store, op func(store.Store)) {
	var tp, ts, cp, cs []time.Duration
	for b.Loop() {
		for _, c := range []struct {
			st        store.Store
			wall, cpu *[]time.Duration
		}{{plain, &tp, &cp}, {sealed, &ts, &cs}} {
			runtime.GC()
			start, cpu0 := time.Now(), cpuTime(b)
			op(c.st)
			*c.wall = append(*c.wall, time.Since(start))
			*c.cpu = append(*c.cpu, cpuTime(b)-cpu0)
		}
	}
	mp, ms := median(tp), median(ts)
	b.ReportMetric(float64(mp.Milliseconds()), "plain-ms")
	b.ReportMetric(float64(ms.Milliseconds()), "sealed-ms")
	b.ReportMetric(float64(ms)/float64(mp), "sealed/plain")
	b.ReportMetric(float64(median(cp).Milliseconds()), "plain-cpu-ms")
	b.ReportMetric(float64(median(cs).Milliseconds()), "sealed-cpu-ms")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpen is the cost of opening one sealed authorizer record.
func BenchmarkOpen(b *testing.B) {
	rec := authorizerRecords(b, 1)[0]
	s := New(memory.New(), ring(b, NewKey()))
	s.Put(b.Context(), rec.Key, rec.Value, 0)
	raw, _ := s.inner.Get(b.Context(), rec.Key)
	for b.Loop() {
		if _, err := s.open(rec.Key, raw.Value, false); err != nil {
			b.Fatal(err)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkMigrate measures the first start with a key: the pass that
// seals 100,000 plain authorizer records of a bolt file in place. Run it
// with -benchtime 1x: each round fills a new file.
func BenchmarkMigrate(b *testing.B) {
	recs := authorizerRecords(b, restoreRecords)
	r := ring(b, NewKey())
	for b.Loop() {
		b.StopTimer()
		inner, err := bolt.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		fill(b, inner, recs)
		b.StartTimer()
		s, err := Open(b.Context(), inner, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		n, err := s.Reseal(b.Context())
		if err != nil || n.Resealed != restoreRecords {
			b.Fatalf("Reseal = %+v, %v", n, err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// authorizerRecords makes n authorizer records as a Manager stores them.
func authorizerRecords(b *testing.B, n int) []store.KeyEntry {
	st := memory.New()
	m, err := token.New(token.Config{Store: st}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tok, refresh := strings.Repeat("t", 150), strings.Repeat("r", 100)
	for i := range n {
		seed := &token.Seed{Token: wechat.Token{Value: fmt.Sprintf("%s%06d", tok, i), ExpiresIn: 2 * time.Hour}, State: refresh}
		if err := m.Add(b.Context(), authorizer(fmt.Sprintf("platform/wxauthorizer%06d", i)), seed); err != nil {
			b.Fatal(err)
		}
	}
	ents, err := st.Load(b.Context(), "")
	if err != nil || len(ents) != n {
		b.Fatalf("%d records, %v", len(ents), err)
	}
	return ents
}

// fill writes recs to st from many goroutines, so that bolt commits them
// in large batches.
func fill(b *testing.B, st store.Store, recs []store.KeyEntry) {
	var wg sync.WaitGroup
	const writers = 256
	for w := range writers {
		wg.Go(func() {
			for i := w; i < len(recs); i += writers {
				if _, err := st.Put(b.Context(), recs[i].Key, recs[i].Value, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
