package wechat

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// flaky serves h until down is set, then drops every connection without an
// answer, as a host that cannot be reached does. While status is set, it
// answers that status instead.
type flaky struct {
	h      http.Handler
	down   atomic.Bool
	status atomic.Int32
	hits   atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	if f.down.Load() {
		panic(http.ErrAbortHandler)
	}
	if code := f.status.Load(); code != 0 {
		http.Error(w, http.StatusText(int(code)), int(code))
		return
	}
	f.h.ServeHTTP(w, r)
}

// newFake starts a fake WeChat behind a real HTTP server, knowing app
// wx1/s1 and component wxc/cs.
func newFake(t *testing.T) (*wxtest.Fake, *httptest.Server) {
	t.Helper()
	f := wxtest.New(wxtest.Config{})
	f.AddApp("wx1", "s1")
	f.AddCorp("ww1", "cs1")
	f.AddComponent(wxtest.Component{AppID: "wxc", Secret: "cs"})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close)
	return f, srv
}

// refusedURL is the URL of a port nothing listens on any more: dials to
// it are refused.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return "http://" + ln.Addr().String()
}

// newHTTP is an http.Client with connections of its own.
func newHTTP(t *testing.T, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// wantUpstreams compares what Upstreams reports on the fields a test
// controls.
func wantUpstreams(t *testing.T, c *Client, want ...UpstreamStatus) {
	t.Helper()
	got := c.Upstreams()
	if len(got) != len(want) {
		t.Fatalf("Upstreams() = %+v, want %d hosts", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.URL != w.URL || g.Active != w.Active || g.Healthy != w.Healthy || g.Failovers != w.Failovers {
			t.Errorf("Upstreams()[%d] = %+v, want URL %s, active %v, healthy %v, failovers %d",
				i, g, w.URL, w.Active, w.Healthy, w.Failovers)
		}
		if g.Healthy != (g.LastError == "") {
			t.Errorf("Upstreams()[%d]: healthy %v with LastError %q", i, g.Healthy, g.LastError)
		}
	}
}

// TestFailoverUnreachable: whatever way the primary cannot be reached, a
// call succeeds on the failover host, which becomes active.
func TestFailoverUnreachable(t *testing.T) {
	tests := []struct {
		name    string
		primary func(t *testing.T) string
		timeout time.Duration // of the HTTP client
	}{
		{"refused", refusedURL, 0},
		{"dropped", func(t *testing.T) string {
			fl := &flaky{h: http.NotFoundHandler()}
			fl.down.Store(true)
			srv := httptest.NewServer(fl)
			t.Cleanup(srv.Close)
			return srv.URL
		}, 0},
		{"untrusted TLS", func(t *testing.T) string {
			f, _ := newFake(t)
			srv := httptest.NewUnstartedServer(f)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return srv.URL
		}, 0},
		{"timeout", func(t *testing.T) string {
			f, srv := newFake(t)
			f.SetFault("", wxtest.Fault{Hang: true})
			return srv.URL
		}, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := tt.primary(t)
			f, backup := newFake(t)
			c := &Client{HTTP: newHTTP(t, tt.timeout), API: primary, APIFailover: []string{backup.URL}}
			tok, err := c.ClassicToken(t.Context(), "wx1", "TOPSECRET")
			// The fake refuses TOPSECRET: its 40125 proves the failover answered.
			if code := ErrCode(err); code != CodeInvalidSecret {
				t.Fatalf("ClassicToken = %v, %v; want the failover's errcode 40125", tok, err)
			}
			st := c.Upstreams()
			if strings.Contains(st[0].LastError, "TOPSECRET") || st[0].LastError == "" {
				t.Errorf("primary LastError = %q; want the cause, without the secret", st[0].LastError)
			}
			wantUpstreams(t, c,
				UpstreamStatus{URL: primary, Failovers: 1},
				UpstreamStatus{URL: backup.URL, Active: true, Healthy: true})

			if _, err := c.ClassicToken(t.Context(), "wx1", "s1"); err != nil {
				t.Fatalf("second ClassicToken: %v", err)
			}
			if got := f.Stats("wx1").ClassicCalls; got != 2 {
				t.Errorf("failover host saw %d classic calls, want 2", got)
			}
			wantUpstreams(t, c,
				UpstreamStatus{URL: primary, Failovers: 1},
				UpstreamStatus{URL: backup.URL, Active: true, Healthy: true})
		})
	}
}

// TestFailoverEveryAPICall: every call to the API host fails over; the
// WeCom host has no failover.
func TestFailoverEveryAPICall(t *testing.T) {
	ctx := t.Context()
	calls := []struct {
		name string
		call func(c *Client) error
	}{
		{"stable", func(c *Client) error { _, err := c.StableToken(ctx, "wx1", "s1", false); return err }},
		{"ticket", func(c *Client) error {
			_, err := c.Ticket(ctx, "bad", "jsapi")
			return wantCode(err, CodeInvalidToken, CodeInvalidCredential)
		}},
		{"callbackip", func(c *Client) error {
			_, err := c.CallbackIP(ctx, "bad")
			return wantCode(err, CodeInvalidToken, CodeInvalidCredential)
		}},
		{"component token", func(c *Client) error {
			_, err := c.ComponentToken(ctx, "wxc", "cs", "no-such-ticket")
			return wantCode(err, CodeTicketInvalid, CodeTicketExpired)
		}},
		{"start push", func(c *Client) error {
			return wantCode(c.StartPushTicket(ctx, "wxc", "wrong"), CodeInvalidSecret)
		}},
		{"authorizer token", func(c *Client) error {
			_, _, err := c.AuthorizerToken(ctx, "bad", "wxc", "wxa", "r")
			return wantCode(err, CodeInvalidToken, CodeInvalidCredential)
		}},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			_, backup := newFake(t)
			c := &Client{HTTP: newHTTP(t, 0), API: refusedURL(t), APIFailover: []string{backup.URL}}
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if st := c.Upstreams(); !st[1].Active || st[0].Failovers != 1 {
				t.Errorf("Upstreams() = %+v; want the failover active", st)
			}
		})
	}

	t.Run("wecom", func(t *testing.T) {
		f, backup := newFake(t)
		c := &Client{HTTP: newHTTP(t, 0), WeCom: refusedURL(t), APIFailover: []string{backup.URL}}
		if _, err := c.WeComToken(ctx, "ww1", "cs1"); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("WeComToken = %v; want connection refused", err)
		}
		if n := f.Stats("ww1").WeComCalls; n != 0 {
			t.Errorf("API failover host saw %d WeCom calls, want 0", n)
		}
	})
}

// wantCode turns an answer carrying one of codes into success.
func wantCode(err error, codes ...int) error {
	for _, c := range codes {
		if ErrCode(err) == c {
			return nil
		}
	}
	return fmt.Errorf("error %v, want errcode in %v", err, codes)
}

// TestNoFailoverOnAnswer: an HTTP 5xx or a WeChat errcode is an answer;
// calls stay on the primary.
func TestNoFailoverOnAnswer(t *testing.T) {
	tests := []struct {
		name        string
		fault       wxtest.Fault
		wantHealthy bool
		check       func(error) bool
	}{
		{"5xx", wxtest.Fault{Status: 503}, false, func(err error) bool {
			var he *HTTPError
			return errors.As(err, &he) && he.StatusCode == 503
		}},
		{"errcode", wxtest.Fault{ErrCode: CodeSystemBusy}, true, func(err error) bool { return ErrCode(err) == CodeSystemBusy }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf, primary := newFake(t)
			bf, backup := newFake(t)
			pf.SetFault("", tt.fault)
			c := &Client{HTTP: newHTTP(t, 0), API: primary.URL, APIFailover: []string{backup.URL}}
			if _, err := c.ClassicToken(t.Context(), "wx1", "s1"); !tt.check(err) {
				t.Fatalf("ClassicToken error = %v", err)
			}
			if n := bf.Stats("wx1").ClassicCalls; n != 0 {
				t.Errorf("failover host saw %d calls, want 0", n)
			}
			wantUpstreams(t, c,
				UpstreamStatus{URL: primary.URL, Active: true, Healthy: tt.wantHealthy},
				UpstreamStatus{URL: backup.URL, Healthy: true})
		})
	}
}

// TestNoFailoverOnCallerContext: a call the caller gives up on, by
// deadline or cancellation, is not sent elsewhere and says nothing of the
// host.
func TestNoFailoverOnCallerContext(t *testing.T) {
	for _, name := range []string{"deadline", "cancel"} {
		t.Run(name, func(t *testing.T) {
			pf, primary := newFake(t)
			bf, backup := newFake(t)
			pf.SetFault("", wxtest.Fault{Hang: true})
			c := &Client{HTTP: newHTTP(t, 0), API: primary.URL, APIFailover: []string{backup.URL}}

			var ctx context.Context
			var cancel context.CancelFunc
			want := context.DeadlineExceeded
			if name == "deadline" {
				ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
			} else {
				ctx, cancel = context.WithCancel(t.Context())
				time.AfterFunc(200*time.Millisecond, cancel)
				want = context.Canceled
			}
			defer cancel()
			if _, err := c.ClassicToken(ctx, "wx1", "s1"); !errors.Is(err, want) {
				t.Fatalf("ClassicToken error = %v, want %v", err, want)
			}
			if n := bf.Stats("wx1").ClassicCalls; n != 0 {
				t.Errorf("failover host saw %d calls, want 0", n)
			}
			wantUpstreams(t, c,
				UpstreamStatus{URL: primary.URL, Active: true, Healthy: true},
				UpstreamStatus{URL: backup.URL, Healthy: true})
		})
	}
}

// TestFailoverBothDown: with no host reachable the call fails, retryable,
// naming both causes, and calls stay where they were.
func TestFailoverBothDown(t *testing.T) {
	a, b := refusedURL(t), refusedURL(t)
	c := &Client{HTTP: newHTTP(t, 0), API: a, APIFailover: []string{b}}
	_, err := c.ClassicToken(t.Context(), "wx1", "TOPSECRET")
	if !errors.Is(err, syscall.ECONNREFUSED) || Classify(err) != Retry || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("ClassicToken error = %v; want a retryable refusal without the secret", err)
	}
	if s := err.Error(); !strings.Contains(s, strings.TrimPrefix(a, "http://")) || !strings.Contains(s, strings.TrimPrefix(b, "http://")) {
		t.Errorf("error %q should name both hosts", s)
	}
	wantUpstreams(t, c, UpstreamStatus{URL: a, Active: true}, UpstreamStatus{URL: b})
}

// TestCheckHealthFailsBack: once the primary answers again, a health check
// moves calls back to it.
func TestCheckHealthFailsBack(t *testing.T) {
	pf, _ := newFake(t)
	fl := &flaky{h: pf}
	primary := httptest.NewServer(fl)
	t.Cleanup(primary.Close)
	bf, backup := newFake(t)
	c := &Client{HTTP: newHTTP(t, 0), API: primary.URL, APIFailover: []string{backup.URL}}
	ctx := t.Context()

	fl.down.Store(true)
	if _, err := c.StableToken(ctx, "wx1", "s1", false); err != nil {
		t.Fatal(err)
	}
	c.CheckHealth(ctx)
	wantUpstreams(t, c,
		UpstreamStatus{URL: primary.URL, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Active: true, Healthy: true})
	for i, st := range c.Upstreams() {
		if st.LastCheck.IsZero() {
			t.Errorf("Upstreams()[%d].LastCheck is zero after CheckHealth", i)
		}
	}

	fl.down.Store(false)
	c.CheckHealth(ctx)
	wantUpstreams(t, c,
		UpstreamStatus{URL: primary.URL, Active: true, Healthy: true, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Healthy: true})
	before := fl.hits.Load()
	if _, err := c.StableToken(ctx, "wx1", "s1", false); err != nil {
		t.Fatal(err)
	}
	if fl.hits.Load() == before {
		t.Error("the call after failing back did not reach the primary")
	}
	if n := bf.Stats("wx1").StableCalls; n != 1 {
		t.Errorf("failover host saw %d stable calls, want 1", n)
	}
}

// TestCheckHealthSameAddress: the primary stops listening, then listens
// again on the same address, as a host coming back does.
func TestCheckHealthSameAddress(t *testing.T) {
	pf, _ := newFake(t)
	first := httptest.NewServer(pf)
	addr := first.Listener.Addr().String()
	first.Close()
	_, backup := newFake(t)
	primaryURL := "http://" + addr
	c := &Client{HTTP: newHTTP(t, 0), API: primaryURL, APIFailover: []string{backup.URL}}
	if _, err := c.ClassicToken(t.Context(), "wx1", "s1"); err != nil {
		t.Fatal(err)
	}
	c.CheckHealth(t.Context())
	wantUpstreams(t, c,
		UpstreamStatus{URL: primaryURL, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Active: true, Healthy: true})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	again := &httptest.Server{Listener: ln, Config: &http.Server{Handler: pf}}
	again.Start()
	t.Cleanup(again.Close)
	c.CheckHealth(t.Context())
	wantUpstreams(t, c,
		UpstreamStatus{URL: primaryURL, Active: true, Healthy: true, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Healthy: true})
}

// TestCheckHealthMovesOff: a health check moves calls off an active host
// that cannot be reached (a call hanging on it would spend its whole
// deadline there), but not off one that answers 5xx.
func TestCheckHealthMovesOff(t *testing.T) {
	pf, _ := newFake(t)
	fl := &flaky{h: pf}
	primary := httptest.NewServer(fl)
	t.Cleanup(primary.Close)
	_, backup := newFake(t)
	c := &Client{HTTP: newHTTP(t, 0), API: primary.URL, APIFailover: []string{backup.URL}}

	c.CheckHealth(t.Context())
	wantUpstreams(t, c,
		UpstreamStatus{URL: primary.URL, Active: true, Healthy: true},
		UpstreamStatus{URL: backup.URL, Healthy: true})

	c5 := &Client{HTTP: newHTTP(t, 0), API: primary.URL, APIFailover: []string{backup.URL}}
	fl.status.Store(502)
	c5.CheckHealth(t.Context())
	wantUpstreams(t, c5,
		UpstreamStatus{URL: primary.URL, Active: true},
		UpstreamStatus{URL: backup.URL, Healthy: true})
	if got := c5.Upstreams()[0].LastError; got != "HTTP status 502" {
		t.Errorf("LastError = %q, want HTTP status 502", got)
	}

	fl.status.Store(0)
	fl.down.Store(true)
	c.CheckHealth(t.Context())
	wantUpstreams(t, c,
		UpstreamStatus{URL: primary.URL, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Active: true, Healthy: true})
}

// TestCheckHealthCancelled: a round the caller cancels records nothing.
func TestCheckHealthCancelled(t *testing.T) {
	c := &Client{HTTP: newHTTP(t, 0), API: refusedURL(t), APIFailover: []string{refusedURL(t)}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c.CheckHealth(ctx)
	for i, st := range c.Upstreams() {
		if !st.Healthy || !st.LastCheck.IsZero() {
			t.Errorf("Upstreams()[%d] = %+v after a cancelled check; want untouched", i, st)
		}
	}
}

// TestFailoverConcurrent: many calls at once while the primary goes down
// and comes back all succeed, and count one failover.
func TestFailoverConcurrent(t *testing.T) {
	pf, _ := newFake(t)
	fl := &flaky{h: pf}
	primary := httptest.NewServer(fl)
	t.Cleanup(primary.Close)
	_, backup := newFake(t)
	c := &Client{HTTP: newHTTP(t, 0), API: primary.URL, APIFailover: []string{backup.URL}}
	ctx := t.Context()

	storm := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 50 {
			wg.Go(func() {
				for j := range 4 {
					var err error
					if (i+j)%2 == 0 {
						_, err = c.ClassicToken(ctx, "wx1", "s1")
					} else {
						_, err = c.StableToken(ctx, "wx1", "s1", false)
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Go(func() {
			for range 5 {
				c.CheckHealth(ctx)
				_ = c.Upstreams()
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}

	fl.down.Store(true)
	storm()
	wantUpstreams(t, c,
		UpstreamStatus{URL: primary.URL, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Active: true, Healthy: true})

	fl.down.Store(false)
	storm()
	c.CheckHealth(ctx)
	wantUpstreams(t, c,
		UpstreamStatus{URL: primary.URL, Active: true, Healthy: true, Failovers: 1},
		UpstreamStatus{URL: backup.URL, Healthy: true})
}

// TestFailoverWraps: calls on the last host in the list fail over to the
// first.
func TestFailoverWraps(t *testing.T) {
	pf, _ := newFake(t)
	a := &flaky{h: pf}
	as := httptest.NewServer(a)
	t.Cleanup(as.Close)
	bf, _ := newFake(t)
	b := &flaky{h: bf}
	bs := httptest.NewServer(b)
	t.Cleanup(bs.Close)
	c := &Client{HTTP: newHTTP(t, 0), API: as.URL, APIFailover: []string{bs.URL}}
	ctx := t.Context()

	a.down.Store(true)
	if _, err := c.ClassicToken(ctx, "wx1", "s1"); err != nil {
		t.Fatal(err)
	}
	a.down.Store(false)
	b.down.Store(true)
	if _, err := c.ClassicToken(ctx, "wx1", "s1"); err != nil {
		t.Fatal(err)
	}
	wantUpstreams(t, c,
		UpstreamStatus{URL: as.URL, Active: true, Healthy: true, Failovers: 1},
		UpstreamStatus{URL: bs.URL, Failovers: 1})
}

// TestMoveOffOnce: calls failing on a host that others have left follow
// them, move nothing and count nothing; nor does one that failed before a
// health check moved calls back.
func TestMoveOffOnce(t *testing.T) {
	u := newUpstreams("http://a", []string{"http://b", "http://c"})
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	from, gen := u.current()
	if to, ok := u.failed(from, refused); !ok || to != 1 {
		t.Fatalf("failed(0) = %d, %v; want the next host, 1", to, ok)
	}
	u.moveOff(0, 2, gen) // another call found c answering
	if to, _ := u.failed(from, refused); to != 2 {
		t.Errorf("failed(0) after calls moved to 2 = %d, want 2", to)
	}
	u.moveOff(0, 2, gen)
	u.checked([]probeResult{{reachable: true, healthy: true}, {reachable: true, healthy: true}, {reachable: true, healthy: true}}, time.Now())
	u.moveOff(0, 1, gen) // a call begun before both moves
	if active, _ := u.current(); active != 0 || u.hosts[0].failovers != 1 {
		t.Errorf("active %d with %d failovers, want 0 with 1", active, u.hosts[0].failovers)
	}
}

func TestUpstreamsShape(t *testing.T) {
	var zero Client
	wantUpstreams(t, &zero, UpstreamStatus{URL: DefaultAPI, Active: true, Healthy: true})

	c := &Client{API: "https://user:pw@api.example/", APIFailover: []string{"", "https://user:pw@api.example", "https://b.example/?key=SECRET#x", "https://b.example/?key=SECRET#x"}}
	wantUpstreams(t, c,
		UpstreamStatus{URL: "https://api.example", Active: true, Healthy: true},
		UpstreamStatus{URL: "https://b.example/", Healthy: true})
}

// TestRunHealthChecks runs the loop for ten minutes of a fake clock.
func TestRunHealthChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var primaryDown atomic.Bool
		var probes atomic.Int64
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "primary" {
				probes.Add(1)
				if primaryDown.Load() {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
				}
			}
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"errcode":41001,"errmsg":"access_token missing"}`))}, nil
		})
		c := &Client{HTTP: &http.Client{Transport: rt}, API: "http://primary", APIFailover: []string{"http://backup"}}
		primaryDown.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.RunHealthChecks(ctx, 30*time.Second)
		}()

		synctest.Wait()
		if n := probes.Load(); n != 1 {
			t.Fatalf("%d probes at start, want 1", n)
		}
		wantUpstreams(t, c,
			UpstreamStatus{URL: "http://primary", Failovers: 1},
			UpstreamStatus{URL: "http://backup", Active: true, Healthy: true})

		primaryDown.Store(false)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		// One at once, then every 27 to 33 seconds.
		if n := probes.Load(); n < 1+18 || n > 1+22 {
			t.Errorf("%d probes in ten minutes, want 19 to 23", n)
		}
		wantUpstreams(t, c,
			UpstreamStatus{URL: "http://primary", Active: true, Healthy: true, Failovers: 1},
			UpstreamStatus{URL: "http://backup", Healthy: true})

		cancel()
		<-done
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestJitter(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want time.Duration
	}{{0, 27 * time.Second}, {0.5, 30 * time.Second}, {0.75, 31500 * time.Millisecond}} {
		if got := jitter(30*time.Second, tt.f); got != tt.want {
			t.Errorf("jitter(30s, %v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{&net.DNSError{Err: "no such host", Name: "api.weixin.qq.com", IsNotFound: true}, true},
		{fmt.Errorf("transport connection broken: %w", io.EOF), true},
		{io.ErrUnexpectedEOF, true},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		// The caller's deadline is told apart by its context, not here.
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{errors.New("stopped after 10 redirects"), false},
		{&HTTPError{StatusCode: 502}, false},
		{&APIError{ErrCode: -1}, false},
		{ErrBadResponse, false},
	}
	for _, tt := range tests {
		if got := unreachable(tt.err); got != tt.want {
			t.Errorf("unreachable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
