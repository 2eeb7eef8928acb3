package client_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/clienttest"
)

// counter is an http.RoundTripper in front of the client's own that counts
// the requests reaching the wxtoken server, by path, and can hold them at
// a gate so that a test can line callers up behind one request.
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
	gate chan struct{} // nil: no gate; else requests wait until closed
	seen atomic.Int64
}

func newCounter(next http.RoundTripper) *counter {
	return &counter{next: next, n: map[string]int{}}
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.Method+" "+req.URL.Path]++
	gate := c.gate
	c.mu.Unlock()
	c.seen.Add(1)
	if gate != nil {
		select {
		case <-gate:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return c.next.RoundTrip(req)
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// counted returns a client of srv whose requests go through a counter.
func counted(t *testing.T, srv *clienttest.Server, opts ...client.Option) (*counter, *client.Client) {
	t.Helper()
	return countedOf(t, srv, 0, opts...)
}

// countedOf is counted for srv's instance i.
func countedOf(t *testing.T, srv *clienttest.Server, i int, opts ...client.Option) (*counter, *client.Client) {
	t.Helper()
	base := srv.ClientOf(i).Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cnt := newCounter(base)
	c := srv.NewClientOf(t, i, append([]client.Option{client.WithHTTPClient(&http.Client{Transport: cnt})}, opts...)...)
	return cnt, c
}

// use calls getcallbackip at the fake WeChat with tok and returns the
// errcode (0: the fake accepted the token).
func use(t *testing.T, srv *clienttest.Server, tok string) int {
	t.Helper()
	base := srv.FakeURL
	if base == "" {
		base = "https://api.weixin.qq.com"
	}
	resp, err := srv.FakeClient().Get(base + "/cgi-bin/getcallbackip?access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		ErrCode int `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.ErrCode
}

// prefix shows a token in a failure message without the whole value.
func prefix(tok string) string {
	if len(tok) > 8 {
		return tok[:8] + "…"
	}
	return tok
}
