package client_test

import (
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxtoken/wxtoken/clienttest"
)

// The cached read, next to golang.org/x/oauth2's ReuseTokenSource, the
// usual Go token cache, each answering a token that is valid for hours:
//
//	go test -run X -bench Cached -count 5 ./client
//
// Both are read by one goroutine (Serial) and by GOMAXPROCS goroutines
// together (Parallel), the way a busy business server reads.

var sink string

func BenchmarkCachedTokenSource(b *testing.B) {
	srv := clienttest.Start(b, clienttest.Options{})
	c := srv.NewClient(b)
	ts := c.TokenSource("oa")
	if _, err := ts.Token(b.Context()); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = ts.Token(ctx)
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s string
			for pb.Next() {
				s, _ = ts.Token(ctx)
			}
			sink = s
		})
	})
}

// staticSource is the oauth2.TokenSource behind ReuseTokenSource; it is
// asked only once, as the token stays valid.
type staticSource struct{ tok *oauth2.Token }

func (s staticSource) Token() (*oauth2.Token, error) { return s.tok, nil }

func BenchmarkCachedOAuth2Reuse(b *testing.B) {
	ts := oauth2.ReuseTokenSource(nil, staticSource{&oauth2.Token{AccessToken: "token", Expiry: time.Now().Add(2 * time.Hour)}})
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, _ := ts.Token()
			sink = t.AccessToken
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var s string
			for pb.Next() {
				t, _ := ts.Token()
				s = t.AccessToken
			}
			sink = s
		})
	})
}
