package token

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/wechat"
)

// idleSource is never called: the seeded tokens are fresh for the whole
// measurement.
type idleSource struct{}

func (idleSource) Fetch(context.Context, Request) (Fetched, error) {
	return Fetched{}, fmt.Errorf("not called")
}

// BenchmarkMemoryPerAuthorizer measures the heap one authorizer costs: its
// entry, snapshot, timer and stored record (in the memory store), with
// WeChat-sized tokens (about 150 bytes) and refresh tokens. It reports
// bytes/authorizer; b.N is ignored beyond running it once per round.
func BenchmarkMemoryPerAuthorizer(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(heapPerAuthorizer(b, 10_000), "bytes/authorizer")
	}
}

// heapPerAuthorizer adds n seeded authorizers to a fresh Manager and
// returns the heap they hold, per authorizer.
func heapPerAuthorizer(b *testing.B, n int) float64 {
	tok := strings.Repeat("t", 150)
	refresh := strings.Repeat("r", 100)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := memory.New()
	m, err := New(Config{Store: st}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for i := range n {
		c := Credential{ID: fmt.Sprintf("wxauthorizer%06d", i), Kind: "authorizer", Owner: "platform", Source: idleSource{}}
		seed := &Seed{Token: wechat.Token{Value: fmt.Sprintf("%s%06d", tok, i), ExpiresIn: 2 * time.Hour}, State: refresh}
		if err := m.Add(b.Context(), c, seed); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(m.IDs()) != n {
		b.Fatalf("%d authorizers held, want %d", len(m.IDs()), n)
	}
	runtime.KeepAlive(st)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}
