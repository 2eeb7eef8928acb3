package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// Cluster mode: several instances share one Redis. These tests run real
// instances (in-process Mains, or the binary where a process must die),
// a redis-server of their own and the fake WeChat on a real listener, and
// they assert on the fake's counters. Time limits in them are deadlines
// for failing, never the thing asserted.

// mpCredentials are the fake's app1 as wx1 in classic mode and app2 as
// wx2 in stable mode, as YAML list items.
const mpCredentials = `
  - {id: wx1, kind: mp, appid: ` + app1 + `, secret: secret1, mode: classic}
  - {id: wx2, kind: mp, appid: ` + app2 + `, secret: secret2}`

// classicOnly is wx1 alone.
const classicOnly = `
  - {id: wx1, kind: mp, appid: ` + app1 + `, secret: secret1, mode: classic}`

// stableRenewBefore is how close to expiry the fake's stable_token
// endpoint starts issuing a new token. WeChat does so 5 minutes before
// expiry, more than the two 1-minute safety margins a refresh plan keeps
// for 2-hour tokens; for the short-lived tokens here, 4 s keeps that
// order over their 1 s margins, so a planned refresh gets a new token.
const stableRenewBefore = 4 * time.Second

// clusterConfig is what the cluster tests vary in an instance's
// configuration.
type clusterConfig struct {
	Redis    string        // the shared Redis's address
	Upstream string        // the fake WeChat's URL
	Timeout  time.Duration // upstream.timeout; zero means 2s
	// Refresh is the refresh section as a YAML flow mapping.
	Refresh string
	// Credentials are YAML list items; empty means mpCredentials.
	Credentials string
}

func (c clusterConfig) yaml() string {
	timeout, creds := c.Timeout, c.Credentials
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	if creds == "" {
		creds = mpCredentials
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
store: {type: redis, addrs: ["%[1]s"]}
upstream: {api: %[2]s, wecom: %[2]s, timeout: %[3]s}
refresh: %[4]s
credentials:%[5]s
clients:
  - {name: e2e, key: %[6]s, allow: ["*"]}
`, c.Redis, c.Upstream, timeout, c.Refresh, creds, clientKey)
}

// node is one in-process instance of a cluster.
type node struct {
	m    *Main
	once sync.Once
}

// startNode runs an instance on the configuration text; the test's
// cleanup stops it if the test has not.
func startNode(t *testing.T, yaml string) *node {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := &node{m: m}
	t.Cleanup(n.stop)
	return n
}

// startNodes runs n instances on the same configuration.
func startNodes(t *testing.T, n int, c clusterConfig) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, c.yaml())
	}
	return nodes
}

func (n *node) addr() string { return n.m.Addr() }

// stop closes the instance, once.
func (n *node) stop() { n.once.Do(func() { n.m.Close() }) }

// newHTTPClient is a client for many concurrent requests to a few hosts:
// it keeps their connections, rather than open (and leave in TIME_WAIT)
// one per request.
func newHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// apiCall sends one API request and decodes a token reply from it.
func apiCall(ctx context.Context, hc *http.Client, method, url, body string) (int, tokenReply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, tokenReply{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, tokenReply{}, err
	}
	defer resp.Body.Close()
	var tr tokenReply
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&tr)
	}
	return resp.StatusCode, tr, err
}

// askToken is one GET /v1/tokens/{id}.
func askToken(ctx context.Context, hc *http.Client, addr, id string) (int, tokenReply, error) {
	return apiCall(ctx, hc, "GET", "http://"+addr+"/v1/tokens/"+id, "")
}

// reportToken is one POST /v1/tokens/{id}/invalidate of stale.
func reportToken(ctx context.Context, hc *http.Client, addr, id, stale string) (int, tokenReply, error) {
	return apiCall(ctx, hc, "POST", "http://"+addr+"/v1/tokens/"+id+"/invalidate", `{"access_token":"`+stale+`"}`)
}

// readyStatus is GET /readyz's status, 0 when the request failed.
func readyStatus(ctx context.Context, hc *http.Client, addr string) int {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/readyz", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// awaitToken polls addr every poll until it serves a token of id that ok
// accepts (nil: any), and fails the test after deadline.
func awaitToken(t *testing.T, hc *http.Client, addr, id string, poll, deadline time.Duration, ok func(string) bool) tokenReply {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		status, tr, err := askToken(t.Context(), hc, addr, id)
		if err == nil && status == http.StatusOK && (ok == nil || ok(tr.AccessToken)) {
			return tr
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not serve the wanted %s token within %v (last: %d %q, %v)", addr, id, deadline, status, tr.AccessToken, err)
		}
		time.Sleep(poll)
	}
}

// awaitCount polls count until it reaches want, failing after deadline.
func awaitCount(t *testing.T, what string, count func() int, want int, deadline time.Duration) {
	t.Helper()
	end := time.Now().Add(deadline)
	for count() < want {
		if time.Now().After(end) {
			t.Fatalf("%s = %d after %v, want %d", what, count(), deadline, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// forceNew ends stale at the fake (as a second system fetching with the
// secret would: a report of a token WeChat still accepts is answered
// with that token) and reports it to addr until a new token is stored,
// and returns the new token.
func forceNew(t *testing.T, hc *http.Client, fake *wxtest.Fake, account, addr, id, stale string) string {
	t.Helper()
	fake.Expire(account)
	end := time.Now().Add(20 * time.Second)
	for {
		status, tr, err := reportToken(t.Context(), hc, addr, id, stale)
		switch {
		case err == nil && status == http.StatusOK && tr.AccessToken != stale:
			return tr.AccessToken
		case err == nil && status == http.StatusOK:
			t.Fatalf("invalidate %s on %s answered the reported token", id, addr)
		// 429: too soon after the last fetch. 502: the refresh failed and
		// is retried on its backoff, as when an authorizer's fetch met a
		// component token a peer had just replaced and WeChat ended,
		// before this instance heard of the new one. Both are retried.
		case err == nil && status != http.StatusTooManyRequests && status != http.StatusBadGateway:
			t.Fatalf("invalidate %s on %s: status %d", id, addr, status)
		case time.Now().After(end):
			t.Fatalf("invalidate %s on %s: no new token within 20s (last %d, %v)", id, addr, status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterOneFetchPerCycle: three instances under a hundred business
// servers for 30 s fetch each token once per refresh cycle between them,
// not once per instance, and no business server ever holds a dead token.
func TestClusterOneFetchPerCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 66 s of real time")
	}
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			oneFetchPerCycle(t, n, 22*time.Second)
		})
	}
}

// oneFetchPerCycle runs instances wxtokens on one Redis under load for
// the given time and checks the fetches against one per refresh cycle.
func oneFetchPerCycle(t *testing.T, instances int, load time.Duration) {
	const (
		lifetime, overlap = 10 * time.Second, 4 * time.Second
		clients           = 100
	)
	fake, up := upstream(t, wxtest.Config{Lifetime: lifetime, Overlap: overlap, StableRenewBefore: stableRenewBefore})
	rs := redistest.New(t, redistest.Options{})
	begin := time.Now()
	nodes := startNodes(t, instances, clusterConfig{Redis: rs.Addr(), Upstream: up,
		Refresh: fmt.Sprintf("{overlap: %s, min_force_interval: 1s}", overlap)})
	hc := newHTTPClient(t)
	for _, n := range nodes {
		awaitToken(t, hc, n.addr(), "wx1", 10*time.Millisecond, 15*time.Second, nil)
		awaitToken(t, hc, n.addr(), "wx2", 10*time.Millisecond, 15*time.Second, nil)
	}
	first := time.Now() // the first tokens are issued by now
	wc := &wechat.Client{API: up, HTTP: hc}

	var uses, gets atomic.Int64
	var wg sync.WaitGroup
	end := first.Add(load)
	for i := range clients {
		n, id := nodes[i%len(nodes)], []string{"wx1", "wx2"}[i%2]
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond) // spread the start
			var tok string
			var until time.Time
			for time.Now().Before(end) {
				if !time.Now().Before(until) {
					status, tr, err := askToken(t.Context(), hc, n.addr(), id)
					if err != nil || status != http.StatusOK {
						t.Errorf("client %d: GET %s from %s: %d, %v", i, id, n.addr(), status, err)
						return
					}
					gets.Add(1)
					tok, until = tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second)
				}
				if _, err := wc.CallbackIP(t.Context(), tok); err != nil {
					t.Errorf("client %d: cached %s token failed upstream: %v", i, id, err)
					return
				}
				uses.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	s1, s2 := fake.Stats(app1), fake.Stats(app2)
	read := time.Now()

	if s1.DeadUses != 0 || s2.DeadUses != 0 {
		t.Errorf("dead uses: classic %d, stable %d; want 0", s1.DeadUses, s2.DeadUses)
	}
	if s2.StableForced != 0 {
		t.Errorf("stable forced refreshes = %d, want 0", s2.StableForced)
	}
	// After each fetch the next is planned at a fraction of the lifetime:
	// RefreshAt±Jitter (0.8±0.05), capped to leave two safety margins
	// (a margin is lifetime/120, at least 1 s). For 10 s tokens that is
	// 7.5 s to 8 s. The least number of fetches allows each cycle a
	// second for timers, the lease and the call; the most counts from
	// before the instances started.
	cycleMin, cycleMax := 7500*time.Millisecond, 8*time.Second
	least := 1 + int(read.Sub(first)/(cycleMax+time.Second))
	most := 1 + int(read.Sub(begin)/cycleMin)
	if s1.Issued < least || s1.Issued > most || s1.ClassicCalls != s1.Issued {
		t.Errorf("classic: %d calls issued %d tokens in %v across %d instances; want %d to %d, one per refresh cycle",
			s1.ClassicCalls, s1.Issued, read.Sub(begin).Round(time.Second), instances, least, most)
	}
	// A planned stable refresh comes within stableRenewBefore of expiry,
	// so it is one call issuing one token too.
	if s2.Issued < least || s2.Issued > most || s2.StableCalls != s2.Issued {
		t.Errorf("stable: %d calls issued %d tokens in %v across %d instances; want %d to %d, one per refresh cycle",
			s2.StableCalls, s2.Issued, read.Sub(begin).Round(time.Second), instances, least, most)
	}
	expected := 1 + int(read.Sub(first)/((cycleMin+cycleMax)/2))
	t.Logf("%v, %d instances, %d clients: %d token GETs, %d uses, 0 dead", read.Sub(begin).Round(time.Millisecond), instances, clients, gets.Load(), uses.Load())
	t.Logf("classic: %d fetches, %d tokens (expected %d for one per cycle, bounds %d..%d); stable: %d calls, %d tokens, %d forced",
		s1.ClassicCalls, s1.Issued, expected, least, most, s2.StableCalls, s2.Issued, s2.StableForced)
}

// TestClusterInvalidationStorm: 300 business servers report the same
// token at once, spread over three instances. WeChat is asked once, and
// every caller gets the one new token: the instances that did not fetch
// wait on the lease, re-read and adopt it.
func TestClusterInvalidationStorm(t *testing.T) {
	const callers = 300
	fake, up := upstream(t, wxtest.Config{})
	rs := redistest.New(t, redistest.Options{})
	nodes := startNodes(t, 3, clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{overlap: 3s, min_force_interval: 1s}"})
	hc := newHTTPClient(t)
	old := awaitToken(t, hc, nodes[0].addr(), "wx1", 10*time.Millisecond, 15*time.Second, nil).AccessToken
	for _, n := range nodes[1:] {
		awaitToken(t, hc, n.addr(), "wx1", 10*time.Millisecond, 15*time.Second, func(s string) bool { return s == old })
	}
	// The token was fetched before it was served: past this sleep, the
	// reports are beyond min_force_interval.
	time.Sleep(1500 * time.Millisecond)
	before := fake.Stats(app1).ClassicCalls
	fake.Expire(app1) // a token WeChat accepts is checked, not replaced

	type answer struct {
		status int
		token  string
		err    error
	}
	answers := make([]answer, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			status, tr, err := reportToken(t.Context(), hc, nodes[i%len(nodes)].addr(), "wx1", old)
			answers[i] = answer{status, tr.AccessToken, err}
		})
	}
	close(start)
	wg.Wait()

	if calls := fake.Stats(app1).ClassicCalls - before; calls != 1 {
		t.Errorf("%d reports over 3 instances made %d fetches, want 1", callers, calls)
	}
	got := map[string]int{}
	for _, a := range answers {
		switch {
		case a.err != nil:
			got["error: "+a.err.Error()]++
		case a.status != http.StatusOK:
			got[fmt.Sprintf("status %d", a.status)]++
		default:
			got[a.token]++
		}
	}
	fresh := answers[0].token
	if len(got) != 1 || fresh == old || got[fresh] != callers {
		t.Fatalf("callers got %v; want all %d to get one new token", got, callers)
	}
	for _, n := range nodes {
		if status, tr, err := askToken(t.Context(), hc, n.addr(), "wx1"); status != http.StatusOK || tr.AccessToken != fresh {
			t.Errorf("after the storm %s serves %d %q (%v), want the new token", n.addr(), status, tr.AccessToken, err)
		}
	}
}

// TestClusterPropagation measures how soon the other instances serve a
// token one instance stored: the peers learn of it from the store's change
// notification. The numbers are logged, not asserted; that peers serve it
// at all is.
func TestClusterPropagation(t *testing.T) {
	const trials = 21
	fake, up := upstream(t, wxtest.Config{})
	rs := redistest.New(t, redistest.Options{})
	nodes := startNodes(t, 3, clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{overlap: 3s, min_force_interval: 50ms}"})
	hc := newHTTPClient(t)
	cur := awaitToken(t, hc, nodes[0].addr(), "wx1", 10*time.Millisecond, 15*time.Second, nil).AccessToken
	for _, n := range nodes[1:] {
		awaitToken(t, hc, n.addr(), "wx1", 10*time.Millisecond, 15*time.Second, func(s string) bool { return s == cur })
	}

	// A peer's delay is measured from the writer's answer, which comes
	// just after the write: a slight underestimate. From the writer's
	// request, it includes the fetch: an overestimate.
	var fromAnswer, fromRequest []time.Duration
	for i := range trials {
		writer := nodes[i%len(nodes)]
		time.Sleep(60 * time.Millisecond) // past min_force_interval since the last fetch
		fake.Expire(app1)                 // a token WeChat accepts is checked, not replaced
		asked := time.Now()
		status, tr, err := reportToken(t.Context(), hc, writer.addr(), "wx1", cur)
		stored := time.Now()
		fresh := tr.AccessToken
		if err != nil || status != http.StatusOK || fresh == cur {
			t.Fatalf("trial %d: invalidate on %s: %d %q, %v; want a new token", i, writer.addr(), status, fresh, err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n == writer {
				continue
			}
			wg.Go(func() {
				end := stored.Add(5 * time.Second)
				for {
					status, tr, err := askToken(t.Context(), hc, n.addr(), "wx1")
					if err == nil && status == http.StatusOK && tr.AccessToken == fresh {
						now := time.Now()
						mu.Lock()
						fromAnswer = append(fromAnswer, now.Sub(stored))
						fromRequest = append(fromRequest, now.Sub(asked))
						mu.Unlock()
						return
					}
					if time.Now().After(end) {
						t.Errorf("trial %d: %s did not serve the token %s stored within 5s", i, n.addr(), writer.addr())
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		cur = fresh
	}
	for _, m := range []struct {
		from string
		lat  []time.Duration
	}{{"the writer's answer", fromAnswer}, {"the writer's request", fromRequest}} {
		slices.Sort(m.lat)
		pct := func(p int) time.Duration { return m.lat[(len(m.lat)-1)*p/100] }
		t.Logf("a peer serves a stored token, from %s, over %d samples with 1 ms polls: min %v, median %v, p90 %v, max %v",
			m.from, len(m.lat), m.lat[0], pct(50), pct(90), m.lat[len(m.lat)-1])
	}
}

// TestClusterKillLeaseHolder runs two instances as processes. The one
// that takes the lease is killed with SIGKILL while its fetch is stuck
// upstream; the other takes over once the lease expires, with one more
// fetch, and never hands out a dead token.
func TestClusterKillLeaseHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits out a lease")
	}
	bin := buildBinary(t)
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(app1, "secret1")
	// The first fetch stalls for longer than the test, and is abandoned
	// when its caller dies; calls after it are answered at once.
	fake.SetFault(app1, wxtest.Fault{Delay: 5 * time.Minute, Count: 1})
	rs := redistest.New(t, redistest.Options{})
	hc := newHTTPClient(t)

	// Each instance reaches the fake through a host of its own, which
	// tells the test which of them is fetching.
	const lockTTL = 5 * time.Second
	type instance struct {
		calls  atomic.Int64 // token calls it made
		up     string       // its host for the fake
		config string
		cmd    *exec.Cmd
		addr   string
	}
	insts := []*instance{{}, {}}
	dir := t.TempDir()
	for i, in := range insts {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/cgi-bin/token" {
				in.calls.Add(1)
			}
			fake.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		in.up = srv.URL
		in.config = filepath.Join(dir, fmt.Sprintf("wxtoken%d.yaml", i))
		cfg := clusterConfig{Redis: rs.Addr(), Upstream: in.up, Timeout: 4 * time.Second,
			Refresh:     fmt.Sprintf("{overlap: 5s, min_force_interval: 1s, lock_ttl: %s}", lockTTL),
			Credentials: classicOnly}
		if err := os.WriteFile(in.config, []byte(cfg.yaml()), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Hold the credential's lease (the token manager's name for it) while
	// both start, so that neither fetches before the other runs. Were the
	// name to change, the check for no fetch below would fail.
	st, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{rs.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	held, err := st.Lock(t.Context(), "lock/token/wx1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		in.cmd, in.addr = startBinary(t, bin, in.config)
		defer func() { in.cmd.Process.Kill(); in.cmd.Wait() }()
	}
	for _, in := range insts {
		if status, _, err := askToken(t.Context(), hc, in.addr, "wx1"); err != nil || status != http.StatusServiceUnavailable {
			t.Fatalf("%s before any fetch: %d, %v; want 503", in.addr, status, err)
		}
	}
	if calls := fake.Stats(app1).ClassicCalls; calls != 0 {
		t.Fatalf("%d fetches while the lease is held elsewhere, want 0", calls)
	}
	if err := held.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	awaitCount(t, "wx1 fetches", func() int { return fake.Stats(app1).ClassicCalls }, 1, 20*time.Second)
	holder, survivor := insts[0], insts[1]
	if holder.calls.Load() == 0 {
		holder, survivor = survivor, holder
	}

	// A business server on the survivor uses every token it is handed.
	ctx, stopClient := context.WithCancel(t.Context())
	wc := &wechat.Client{API: survivor.up, HTTP: hc}
	var served atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			status, tr, err := askToken(ctx, hc, survivor.addr, "wx1")
			if err == nil && status == http.StatusOK {
				if _, err := wc.CallbackIP(ctx, tr.AccessToken); err != nil && ctx.Err() == nil {
					t.Errorf("the survivor served a token that failed upstream: %v", err)
				}
				served.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() { stopClient(); wg.Wait() }()

	killed := time.Now()
	holder.cmd.Process.Kill()
	holder.cmd.Wait()
	if status, _, err := askToken(t.Context(), hc, survivor.addr, "wx1"); err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("survivor while the dead holder's lease lasts: %d, %v; want 503", status, err)
	}
	awaitToken(t, hc, survivor.addr, "wx1", 10*time.Millisecond, lockTTL+20*time.Second, nil)
	takeover := time.Since(killed)
	awaitCount(t, "tokens the survivor served and the client used", func() int { return int(served.Load()) }, 5, 10*time.Second)
	stopClient()
	wg.Wait()

	st1 := fake.Stats(app1)
	if st1.ClassicCalls != 2 || st1.Issued != 1 || holder.calls.Load() != 1 || survivor.calls.Load() != 1 {
		t.Errorf("wx1: %d fetches (holder %d, survivor %d) issued %d tokens; want the holder's abandoned one and the survivor's, 1 token",
			st1.ClassicCalls, holder.calls.Load(), survivor.calls.Load(), st1.Issued)
	}
	if st1.DeadUses != 0 {
		t.Errorf("wx1 dead uses = %d, want 0", st1.DeadUses)
	}
	t.Logf("the survivor served wx1 %v after the lease holder was killed (lock_ttl %v); extra fetches on takeover: %d",
		takeover.Round(time.Millisecond), lockTTL, st1.ClassicCalls-1)
}

// TestClusterRedisOutage stops Redis for longer than the tokens live.
// Meanwhile the instances never fetch the classic token (a fetch they could
// not store or coordinate would kill their peer's token): they serve what
// they hold while it is valid and 503 after, and turn not ready. The stable
// token, which WeChat hands every caller alike, each instance fetches alone
// with normal calls and serves throughout. Once Redis is back they agree
// on one token again without a storm of fetches.
func TestClusterRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 12 s Redis outage")
	}
	const lifetime, overlap, outage = 8 * time.Second, 3 * time.Second, 12 * time.Second
	fake, up := upstream(t, wxtest.Config{Lifetime: lifetime, Overlap: overlap, StableRenewBefore: stableRenewBefore})
	rs := redistest.New(t, redistest.Options{})
	nodes := startNodes(t, 2, clusterConfig{Redis: rs.Addr(), Upstream: up,
		Refresh: fmt.Sprintf("{overlap: %s, min_force_interval: 1s}", overlap)})
	hc := newHTTPClient(t)
	ids := []string{"wx1", "wx2"}
	for _, id := range ids {
		want := awaitToken(t, hc, nodes[0].addr(), id, 10*time.Millisecond, 15*time.Second, nil).AccessToken
		awaitToken(t, hc, nodes[1].addr(), id, 10*time.Millisecond, 15*time.Second, func(s string) bool { return s == want })
	}
	for _, n := range nodes {
		if status := readyStatus(t.Context(), hc, n.addr()); status != http.StatusOK {
			t.Fatalf("%s with fresh tokens: readyz %d, want 200", n.addr(), status)
		}
	}
	classic0, forced0 := fake.Stats(app1).ClassicCalls, fake.Stats(app2).StableForced

	rs.Stop()
	down := time.Now()
	wc := &wechat.Client{API: up, HTTP: hc}
	served, refused := map[string]int{}, map[string]int{}
	notReady := map[string]bool{}
	for time.Since(down) < outage {
		for _, n := range nodes {
			for _, id := range ids {
				status, tr, err := askToken(t.Context(), hc, n.addr(), id)
				switch {
				case err != nil:
					t.Fatalf("GET %s from %s during the outage: %v", id, n.addr(), err)
				case status == http.StatusOK:
					if _, err := wc.CallbackIP(t.Context(), tr.AccessToken); err != nil {
						t.Errorf("%s served %s during the outage that failed upstream: %v", n.addr(), id, err)
					}
					served[id]++
				case status == http.StatusServiceUnavailable:
					refused[id]++
				default:
					t.Errorf("GET %s from %s during the outage: status %d, want 200 or 503", id, n.addr(), status)
				}
			}
			if readyStatus(t.Context(), hc, n.addr()) == http.StatusServiceUnavailable {
				notReady[n.addr()] = true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The classic token expired during the outage: by its end it is not
	// served.
	for _, n := range nodes {
		if status, _, err := askToken(t.Context(), hc, n.addr(), "wx1"); err != nil || status != http.StatusServiceUnavailable {
			t.Errorf("%s serves wx1 after its expiry with Redis down: %d, %v; want 503", n.addr(), status, err)
		}
		if !notReady[n.addr()] || readyStatus(t.Context(), hc, n.addr()) != http.StatusServiceUnavailable {
			t.Errorf("%s stayed ready with no valid token", n.addr())
		}
	}
	if served["wx1"] == 0 || refused["wx1"] == 0 {
		t.Errorf("wx1 during the outage: %d served, %d refused; want the held token served, then 503", served["wx1"], refused["wx1"])
	}
	if refused["wx2"] != 0 {
		t.Errorf("wx2 (stable) during the outage: %d served, %d refused; want it served throughout", served["wx2"], refused["wx2"])
	}
	if c, f := fake.Stats(app1).ClassicCalls, fake.Stats(app2).StableForced; c != classic0 || f != forced0 {
		t.Fatalf("fetches during the Redis outage: %d classic, %d forced stable; want none", c-classic0, f-forced0)
	}

	classic0, stable0 := fake.Stats(app1).ClassicCalls, fake.Stats(app2).StableCalls
	rs.Start()
	up0 := time.Now()
	want := map[string]string{}
	for _, id := range ids {
		want[id] = awaitToken(t, hc, nodes[0].addr(), id, 10*time.Millisecond, time.Minute, nil).AccessToken
	}
	resumed := time.Since(up0)
	for _, id := range ids {
		awaitToken(t, hc, nodes[1].addr(), id, 10*time.Millisecond, 10*time.Second, func(s string) bool { return s == want[id] })
		if _, err := wc.CallbackIP(t.Context(), want[id]); err != nil {
			t.Errorf("%s after recovery failed upstream: %v", id, err)
		}
	}
	agreed := time.Since(up0)
	classic, stable := fake.Stats(app1).ClassicCalls-classic0, fake.Stats(app2).StableCalls-stable0
	if classic > 2 || stable > 2 {
		t.Errorf("fetches after Redis came back: %d classic, %d stable; want at most 2 each", classic, stable)
	}
	t.Logf("outage %v: classic served for its life, then 503, stable throughout; after Redis came back the first instance served in %v, both agreed in %v, with %d classic and %d stable fetches",
		outage, resumed.Round(time.Millisecond), agreed.Round(time.Millisecond), classic, stable)
}

// platformCredentials configures the fake's component as credential plat.
func platformCredentials() string {
	return fmt.Sprintf(`
  - id: plat
    kind: component
    component_appid: %s
    secret: %s
    token: %s
    encoding_aes_key: %s`, platformComp.AppID, platformComp.Secret, platformComp.Token, platformComp.EncodingAESKey)
}

// TestClusterDurableAcrossRedisRestart kills Redis with SIGKILL under two
// instances of a third-party platform and starts everything again: the
// component ticket and the authorizer's refresh token survive (appendfsync
// always), so both tokens are refreshed without a new ticket push or a new
// authorization.
func TestClusterDurableAcrossRedisRestart(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	fake.SetRefreshTokenRotation(platformComp.AppID, 1)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rs := redistest.New(t, redistest.Options{Args: []string{"--appendfsync", "always"}})
	cfg := clusterConfig{Redis: rs.Addr(), Upstream: srv.URL, Credentials: platformCredentials(),
		Refresh: "{overlap: 3s, min_force_interval: 100ms}"}
	hc := newHTTPClient(t)
	wc := &wechat.Client{API: srv.URL, HTTP: hc}
	const auth = "wxauth01"
	pushTo := func(n *node) {
		fake.SetPushTarget(platformComp.AppID, "http://"+n.addr()+"/callback/component/plat", nil)
	}

	a, b := startNode(t, cfg.yaml()), startNode(t, cfg.yaml())
	pushTo(a)
	plat := awaitToken(t, hc, a.addr(), "plat", 10*time.Millisecond, 15*time.Second, nil).AccessToken
	awaitToken(t, hc, b.addr(), "plat", 10*time.Millisecond, 15*time.Second, func(s string) bool { return s == plat })
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	// Rotate the refresh token once on B: the one to survive is not the
	// one the authorization pushed to A.
	first := awaitToken(t, hc, b.addr(), auth, 10*time.Millisecond, 15*time.Second, nil).AccessToken
	authTok := forceNew(t, hc, fake, auth, b.addr(), auth, first)
	awaitToken(t, hc, a.addr(), auth, 10*time.Millisecond, 5*time.Second, func(s string) bool { return s == authTok })
	pushes := fake.Stats(platformComp.AppID).StartPushCalls
	compCalls := fake.Stats(platformComp.AppID).ComponentTokenCalls

	rs.Kill()
	rs.Start()
	a.stop()
	b.stop()
	// The refresh token Redis kept is the one WeChat holds now. (The one
	// it replaced would still work until the new one is used, so a use
	// alone would not tell them apart.)
	rc, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{rs.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	ent, err := rc.Get(t.Context(), "token/plat/"+auth)
	rc.Close()
	var rec token.Stored
	if err == nil {
		rec, err = token.DecodeStored(ent.Value)
	}
	if err != nil {
		t.Fatalf("authorizer record after kill -9 of Redis: %q, %v", ent.Value, err)
	}
	if want := fake.AuthorizerRefreshToken(platformComp.AppID, auth); rec.State != want || rec.Token != authTok {
		t.Fatalf("after kill -9 Redis holds token %q with refresh token %q; want %q with %q", rec.Token, rec.State, authTok, want)
	}
	a, b = startNode(t, cfg.yaml()), startNode(t, cfg.yaml())
	pushTo(a) // a push would reach an instance; none may be asked for

	for _, n := range []*node{a, b} {
		if status, tr, err := askToken(t.Context(), hc, n.addr(), "plat"); status != http.StatusOK || tr.AccessToken != plat {
			t.Fatalf("%s after the restarts serves plat %d %q (%v); want the stored token", n.addr(), status, tr.AccessToken, err)
		}
		if status, tr, err := askToken(t.Context(), hc, n.addr(), auth); status != http.StatusOK || tr.AccessToken != authTok {
			t.Fatalf("%s after the restarts serves %s %d %q (%v); want the stored token", n.addr(), auth, status, tr.AccessToken, err)
		}
	}
	// Refreshing the component token needs the stored ticket; refreshing
	// the authorizer's needs its stored refresh token.
	newPlat := forceNew(t, hc, fake, platformComp.AppID, b.addr(), "plat", plat)
	newAuth := forceNew(t, hc, fake, auth, a.addr(), auth, authTok)
	if _, err := wc.CallbackIP(t.Context(), newAuth); err != nil {
		t.Errorf("authorizer token refreshed with the surviving refresh token fails upstream: %v", err)
	}
	awaitToken(t, hc, a.addr(), "plat", 10*time.Millisecond, 5*time.Second, func(s string) bool { return s == newPlat })
	awaitToken(t, hc, b.addr(), auth, 10*time.Millisecond, 5*time.Second, func(s string) bool { return s == newAuth })
	st := fake.Stats(platformComp.AppID)
	if st.StartPushCalls != pushes {
		t.Errorf("the restarts asked WeChat for %d ticket pushes, want 0: the stored ticket must be used", st.StartPushCalls-pushes)
	}
	if st.ComponentTokenCalls != compCalls+1 {
		t.Errorf("component token calls after the restarts = %d, want 1", st.ComponentTokenCalls-compCalls)
	}
	// Two authorizer tokens were ended on purpose, and a report of one is
	// checked with WeChat before it is replaced (once, or once more after
	// a refresh that met a stale component token): those checks are the
	// only uses of a dead token.
	if st := fake.Stats(auth); st.DeadUses < 2 || st.DeadUses > 4 {
		t.Errorf("authorizer dead uses = %d, want 2 to 4 (the checks of the tokens ended on purpose)", st.DeadUses)
	}
}

// TestReportWithRedisDown: a report that cannot be acted on because Redis
// is unreachable answers 503 store_unavailable, as documented. Before, the
// store's error wrapped a connection error, which the error mapping took
// for WeChat's: 502 upstream_error.
func TestReportWithRedisDown(t *testing.T) {
	_, up := upstream(t, wxtest.Config{})
	rs := redistest.New(t, redistest.Options{})
	n := startNode(t, clusterConfig{Redis: rs.Addr(), Upstream: up, Refresh: "{min_force_interval: 100ms}"}.yaml())
	tok := getToken(t, n.addr(), "wx1").AccessToken
	rs.Stop()
	req, _ := http.NewRequest("POST", "http://"+n.addr()+"/v1/tokens/wx1/invalidate", strings.NewReader(fmt.Sprintf(`{"access_token":%q}`, tok)))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":"store_unavailable"`) {
		t.Fatalf("report with Redis down: %d %s, want 503 store_unavailable", resp.StatusCode, b)
	}
	// The metrics say so: the store's failures, and the request refused.
	fams, _ := scrape(t, "http://"+n.addr()+"/metrics")
	var failed float64
	for _, m := range fams["wxtoken_store_operations_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == "error" {
				failed += m.GetCounter().GetValue()
			}
		}
	}
	if failed == 0 {
		t.Error("no failed store operation counted with Redis down")
	}
	if v, ok := value(fams, "wxtoken_store_up"); !ok || v != 0 {
		t.Errorf("wxtoken_store_up = %v, %v with Redis down; want 0", v, ok)
	}
	if v, ok := value(fams, "wxtoken_api_requests_total", "route", "POST /v1/tokens/{id}/invalidate", "status", "503"); !ok || v != 1 {
		t.Errorf("reports answered 503 counted: %v, %v; want 1", v, ok)
	}
}
