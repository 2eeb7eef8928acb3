package sealed

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
// bytes and refresh tokens) from a bolt file, plain and sealed, in the
// same run. It reports the bytes a record takes in the store.
func BenchmarkRestore(b *testing.B) {
	recs := authorizerRecords(b, restoreRecords)
	ring := ring(b, NewKey())
	for _, c := range []struct {
		name string
		wrap func(store.Store) store.Store
	}{
		{"plain", func(s store.Store) store.Store { return s }},
		{"sealed", func(s store.Store) store.Store { return New(s, ring) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			inner, err := bolt.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			st := c.wrap(inner)
			defer st.Close()
			fill(b, st, recs)
			raw, _ := inner.Load(b.Context(), "token/")
			bytes := 0
			for _, e := range raw {
				bytes += len(e.Value)
			}
			for b.Loop() {
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
			b.ReportMetric(float64(bytes)/float64(len(raw)), "stored-bytes/record")
		})
	}
}

// BenchmarkLoad measures what opening adds to the store's own work: a
// Load of the same 100,000 records from a bolt file, plain and sealed.
func BenchmarkLoad(b *testing.B) {
	recs := authorizerRecords(b, restoreRecords)
	ring := ring(b, NewKey())
	for _, sealed := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "sealed"}[sealed], func(b *testing.B) {
			inner, err := bolt.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			var st store.Store = inner
			if sealed {
				st = New(inner, ring)
			}
			defer st.Close()
			fill(b, st, recs)
			for b.Loop() {
				if ents, err := st.Load(b.Context(), "token/"); err != nil || len(ents) != restoreRecords {
					b.Fatalf("Load = %d records, %v", len(ents), err)
				}
			}
		})
	}
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
