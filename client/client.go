package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by a fetch asked of a closed Client.
var ErrClosed = errors.New("client: closed")

// Client talks to one wxtoken server with one client key. Create it with
// New; it is safe for concurrent use. Close stops its background work.
type Client struct {
	base    *url.URL
	auth    string // "Bearer <key>"
	http    *http.Client
	timeout time.Duration
	log     *slog.Logger
	watch   bool

	// ctx is cancelled by Close; every goroutine the client starts watches
	// it and is counted in wg.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	sources map[sourceKey]*source
	rnd     *rand.Rand // jitter; guarded by mu
	watcher *watcher   // with WithWatch, once a source exists
	// streaming is true while the watch stream is connected: sources then
	// wait for its events instead of fetching before expiry.
	streaming atomic.Bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used to reach the wxtoken server
// (default: a client of its own on a clone of http.DefaultTransport). Its
// Timeout, if any, must leave room for the watch stream, which stays open.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds one request to the server: a fetch, a report or a
// signature (default 10 s). Callers' contexts bound how long they wait;
// this bounds the request they share.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithLogger sets where background failures are logged (default
// slog.Default()). Tokens never appear in the log.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithWatch makes the client keep one event stream (GET /v1/watch) open for
// every source it creates, so that a token or ticket replaced on the server
// replaces the cached one as soon as the event arrives. The stream is
// reconnected with backoff and resumed with Last-Event-ID; while it is down
// the sources refresh before expiry as they do without it.
func WithWatch() Option { return func(c *Client) { c.watch = true } }

// WithRandSeed seeds the jitter of refreshes and reconnects, for tests that
// want one schedule; by default the seed is random.
func WithRandSeed(seed uint64) Option {
	return func(c *Client) { c.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// New returns a client of the wxtoken server at baseURL (such as
// "http://wxtoken:8750") using the client key key.
func New(baseURL, key string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: no query or fragment allowed", baseURL)
	}
	if key == "" || strings.ContainsAny(key, "\r\n") {
		return nil, errors.New("client: key: required, on one line")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, auth: "Bearer " + key, timeout: 10 * time.Second, sources: map[sourceKey]*source{}}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.timeout <= 0 {
		return nil, errors.New("client: timeout must be positive")
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.rnd == nil {
		c.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close stops the background refreshes and the watch stream and waits for
// every goroutine the client started. The cached values are forgotten:
// reads after Close fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	list := make([]*source, 0, len(c.sources))
	for _, s := range c.sources {
		list = append(list, s)
	}
	c.mu.Unlock()
	for _, s := range list {
		s.stop()
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

// goOwned runs fn on a goroutine the client owns: Close waits for it. It
// reports false, without running fn, once the client is closed.
func (c *Client) goOwned(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("wxtoken client: panic in background work", "panic", p)
			}
		}()
		fn()
	}()
	return true
}

// enter counts a timer callback as a goroutine of the client, so that
// Close waits for it; it reports false once the client is closed.
func (c *Client) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// jitter returns d scaled by a random factor in [1-f, 1+f].
func (c *Client) jitter(d time.Duration, f float64) time.Duration {
	c.mu.Lock()
	r := c.rnd.Float64()
	c.mu.Unlock()
	return time.Duration(float64(d) * (1 - f + 2*f*r))
}

// Error is an answer of the wxtoken server other than 200: its status and
// the error it carried ({"error":{"code","message","errcode","errmsg"}}),
// with WeChat's errcode when the server's failure came from WeChat.
type Error struct {
	StatusCode int    // HTTP status
	Code       string // the server's error code: "not_found", "forbidden", "unavailable", ...
	Message    string
	ErrCode    int    // WeChat's errcode, when there was one
	ErrMsg     string // WeChat's errmsg
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("wxtoken: %d %s", e.StatusCode, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// call makes one request to the server and decodes a 200 answer into out.
// path is relative to the base URL and already escaped.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("wxtoken: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("wxtoken: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// decodeError turns a non-200 answer into an *Error.
func decodeError(resp *http.Response, data []byte) error {
	var wire struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		} `json:"error"`
	}
	e := &Error{StatusCode: resp.StatusCode}
	if json.Unmarshal(data, &wire) == nil {
		e.Code, e.Message, e.ErrCode, e.ErrMsg = wire.Error.Code, wire.Error.Message, wire.Error.ErrCode, wire.Error.ErrMsg
	}
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode)
	}
	if s, err := time.ParseDuration(resp.Header.Get("Retry-After") + "s"); err == nil && s > 0 {
		e.RetryAfter = s
	}
	return e
}

// escapeID escapes each segment of a credential id, which may be
// namespaced ("{platform}/{appid}") and then spans two path segments.
func escapeID(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
