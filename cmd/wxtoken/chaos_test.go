package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestChaosSoak runs three instances on one Redis, two in-process and one
// as the real binary, under business servers that use every token they are
// served, while a seeded random sequence of events disturbs them: WeChat
// failing (-1, HTTP 502 or 503, calls that hang) for one account or all,
// tokens ended early by WeChat (Expire), the binary killed with SIGKILL
// and started again, Redis stopped or killed and started again. The
// credentials are a classic, a stable and a WeCom one, a third-party
// platform with two authorizers whose refresh token rotates on every
// refresh, and two WeCom suites: a third-party app installed by two corps
// and a custom-app template (代开发) installed by one, whose suite_tickets
// WeCom pushes every few seconds to whichever instance is up.
//
// What must hold is checked as it runs:
//   - no business server is served a dead token, unless WeChat ended it
//     early, and then only until it has been reported (plus the time
//     peers need to hear of the report);
//   - every report recovers: the reporter holds a working token within a
//     bound of WeChat, Redis and the instances being healthy again;
//   - during each WeChat outage, each credential's calls stay within one
//     backoff schedule (plus what reports, restarts and kills may add);
//   - at quiet points (every few seconds all disturbances end): every
//     instance serves every credential a working token, and the day's
//     counters in GET /v1/tokens are what WeChat counted, less calls whose
//     count a kill or a Redis outage may have lost;
//   - nothing durable is lost: no authorization is lost (61023, and for
//     the suites' corps no 40084, nor 40001 for a custom app's permanent
//     code, and every stored permanent code is the one WeCom holds), the
//     platform never needs a new ticket (no api_start_push_ticket, no
//     61005/61006) and WeCom never refuses a suite_ticket (40085), across
//     Redis restarts and kills.
//
// WXTOKEN_SOAK sets how long the disturbances last (default 25s) and
// WXTOKEN_SOAK_SEED the seed (default 37); a failing run prints both, and
// every run logs its plan. A seed replays the same events at the same
// offsets (chaosPlan); how they interleave with the instances' own timers
// is real time's.
func TestChaosSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a soak of real time")
	}
	seed, length := soakSettings(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with WXTOKEN_SOAK_SEED=%d WXTOKEN_SOAK=%v", seed, length)
		}
	})
	s := startSoak(t)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	// Stop the clients and monitors before the instances' cleanups run
	// (cleanups run last-registered first), also when the test fails.
	t.Cleanup(func() { stop(); wg.Wait() })
	for i, id := range slices.Concat(soakIDs, soakIDs) {
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		wg.Go(func() { s.client(ctx, i, id, rng) })
	}
	wg.Go(func() { s.monitor(ctx) })
	wg.Go(func() { s.pushTickets(ctx) })

	plan := chaosPlan(seed, length)
	t.Logf("plan: %v", plan)
	s.chaos(plan)
	stop()
	wg.Wait()
	s.summary()
}

// The soak's timings. Short tokens make every credential go through
// several refresh cycles; a short upstream timeout makes a hung call fail
// fast; a short lease and resync make takeovers and missed notifications
// cost seconds, not minutes.
const (
	soakLifetime   = 8 * time.Second
	soakOverlap    = 3 * time.Second
	soakTimeout    = time.Second
	soakMaxBackoff = 3 * time.Second
	soakMinForce   = time.Second
	soakLockTTL    = 3 * time.Second
	soakResync     = 2 * time.Second

	// soakQuietEvery is how often every disturbance is ended for a check
	// of service, counters and durable state.
	soakQuietEvery = 8 * time.Second

	// soakRecover bounds how long after a report (or, if later, after the
	// last disturbance) the reporter waits for a working token, and how
	// long after a quiet point begins every instance must serve: the
	// longest backoff wait (max_backoff +20%), a report refused as too
	// soon after a fetch (min_force_interval), a lease left by a killed
	// instance or a hung call (lock_ttl), two upstream calls (stable mode
	// may make two) and a resync for a missed notification, plus 2 s for
	// timers and reconnecting to Redis.
	soakRecover = soakMaxBackoff*12/10 + soakMinForce + soakLockTTL + 2*soakTimeout + soakResync + 2*time.Second

	// soakReportGrace is how long after a report of a dead token an
	// instance may still serve it: until a peer's notification arrives,
	// or its resync reads the record, or a refresh it had in flight
	// (at most a lease) ends.
	soakReportGrace = soakResync + soakLockTTL + time.Second

	// soakWriteAfter is how long after its answer a call's count may take
	// to reach Redis (the write after a fetch, retried over 1.2 s when
	// Redis fails); a call ending this close before a kill or a Redis
	// outage may have its count lost.
	soakWriteAfter = 2 * time.Second

	// soakBinary is the binary's index among the instances.
	soakBinary = 2

	// soakPushEvery is how often WeCom pushes each suite's suite_ticket:
	// every ten minutes against a two-hour token, which at the soak's
	// token lifetime would be under a second; a few seconds still bring
	// several tickets per token.
	soakPushEvery = 2 * time.Second
)

// soakAuthorizers are the platform's authorizers.
var soakAuthorizers = []string{"wxauth01", "wxauth02"}

// The soak's WeCom suites: a third-party app (soakSuite) installed by
// the corps soakSuiteCorps, and a custom-app template (soakCustom: its id
// starts "dk") installed by soakCustomCorp. Each is configured with its
// suite id as credential id, so a corp's token is served at
// /v1/tokens/{suite id}/{corpid}.
var (
	soakSuite = wxtest.Suite{SuiteID: "ww5e1000000000a001", Secret: "soak-suite-secret", Token: "soak-suite-token",
		EncodingAESKey: "s0aks0aks0aks0aks0aks0aks0aks0aks0aks0aks0a"}
	soakCustom = wxtest.Suite{SuiteID: "dk5e1000000000a002", Secret: "soak-custom-secret", Token: "soak-custom-token",
		EncodingAESKey: "cust0mcust0mcust0mcust0mcust0mcust0mcust0mc"}
	soakSuites     = []wxtest.Suite{soakSuite, soakCustom}
	soakSuiteCorps = []string{"ww5e10000000000c01", "ww5e10000000000c02"}
	soakCustomCorp = "ww5e10000000000c03"
)

// soakCorps are the credentials of the corps that installed a suite,
// "{suite id}/{corpid}", which is also the fake's account of each
// authorization.
var soakCorps = []string{soakSuite.SuiteID + "/" + soakSuiteCorps[0], soakSuite.SuiteID + "/" + soakSuiteCorps[1],
	soakCustom.SuiteID + "/" + soakCustomCorp}

// soakSuiteIDs are the suites' credentials: the suites' own tokens, and
// their corps'. Each is also the fake's account behind it.
var soakSuiteIDs = append([]string{soakSuite.SuiteID, soakCustom.SuiteID}, soakCorps...)

// soakIDs are the soak's credentials.
var soakIDs = slices.Concat([]string{"wx1", "wx2", "hr", "plat"}, soakAuthorizers, soakSuiteIDs)

// soakAccounts are the fake's accounts behind the credentials, in the
// order of soakIDs.
var soakAccounts = slices.Concat([]string{app1, app2, corp1, platformComp.AppID}, soakAuthorizers, soakSuiteIDs)

// faulted lists the credentials whose token calls meet a fault set for
// account ("" for every account): a component's fault also meets its
// authorizers' calls when they have none of their own, and a suite's
// the calls for its corps' tokens (get_corp_token, or a custom app's
// gettoken with the permanent code) when they have none of their own.
func faulted(account string) []string {
	switch account {
	case "":
		return soakIDs
	case platformComp.AppID:
		return append([]string{"plat"}, soakAuthorizers...)
	}
	var out []string
	for i, a := range soakAccounts {
		if a == account || strings.HasPrefix(a, account+"/") {
			out = append(out, soakIDs[i])
		}
	}
	return out
}

// soakTokenCalls is the fake's count of token calls of a soak credential,
// failed ones included: get_suite_token's for a suite, get_corp_token's
// for a third-party app's corp, gettoken's for a custom app's corp.
func soakTokenCalls(fake *wxtest.Fake, id string) int {
	switch suite, _, isCorp := strings.Cut(id, "/"); {
	case !slices.Contains(soakSuiteIDs, id):
		return tokenCalls(fake, id)
	case !isCorp:
		return fake.Stats(id).SuiteTokenCalls
	case suite == soakCustom.SuiteID:
		return fake.Stats(id).WeComCalls
	}
	return fake.Stats(id).CorpTokenCalls
}

// soakSuiteCredentials configures the suites, as YAML list items.
func soakSuiteCredentials() string {
	var b strings.Builder
	for _, su := range soakSuites {
		fmt.Fprintf(&b, "\n  - {kind: suite, suite_id: %s, secret: %s, token: %s, encoding_aes_key: %s}",
			su.SuiteID, su.Secret, su.Token, su.EncodingAESKey)
	}
	return b.String()
}

// soakSettings reads WXTOKEN_SOAK_SEED and WXTOKEN_SOAK.
func soakSettings(t *testing.T) (uint64, time.Duration) {
	// The default seed's plan has every kind of event: each fast failure
	// and a hang, Expire, kill -9 of the binary, Redis stopped and killed.
	seed, length := uint64(37), 25*time.Second
	if v := os.Getenv("WXTOKEN_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WXTOKEN_SOAK_SEED=%q: want an unsigned integer", v)
		}
		seed = n
	}
	if v := os.Getenv("WXTOKEN_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("WXTOKEN_SOAK=%q: want a positive duration such as 2m", v)
		}
		length = d
	}
	t.Logf("soak: seed %d, %v", seed, length)
	return seed, length
}

// soak is the state of one chaos soak.
type soak struct {
	t     *testing.T
	begin time.Time
	fake  *wxtest.Fake
	rs    *redistest.Server
	hc    *http.Client
	wc    *wechat.Client // a business server's client: uses tokens at the fake
	nodes []*node        // the in-process instances, never stopped
	bin   string         // the binary
	conf  string         // its configuration file
	day   string         // the Beijing day the soak began

	mu         sync.Mutex
	binCmd     *exec.Cmd
	binAddr    string // "" while the binary is down
	calls      []upCall
	kills      []time.Time
	binStarts  []time.Time
	redisDown  []span    // the last one's to is zero while Redis is down
	expired    time.Time // the last Expire
	fault      *faultRun
	faultEnded time.Time
	pushes     int                  // api_start_push_ticket calls after setup
	pushNext   int                  // the next suite push's instance, among addrs; the pusher's alone
	reported   map[string]time.Time // dead tokens, by when a report was first answered with another
	pending    map[int]*pendingReport
	violations map[string]int
	counts     map[string]int // what happened, for the summary
}

// upCall is one token call an instance made, seen at its own proxy.
type upCall struct {
	inst       int
	cred       string
	start, end time.Time
}

// span is a time interval; a zero to means it has not ended.
type span struct{ from, to time.Time }

// faultRun is one WeChat outage.
type faultRun struct {
	kind, account string // account "" for all
	from          time.Time
	before        map[string]int // token calls per credential at from
}

// pendingReport is a client that reported a dead token and has not used
// a working one since.
type pendingReport struct {
	since   time.Time
	flagged bool
}

// startSoak starts the fake, Redis and the instances, authorizes the
// platform's authorizers, pushes the suites their first suite_tickets
// and installs them in their corps, and waits until every instance serves
// every credential.
func startSoak(t *testing.T) *soak {
	bin := buildBinary(t)
	fake := wxtest.New(wxtest.Config{Lifetime: soakLifetime, Overlap: soakOverlap,
		StableRenewBefore: stableRenewBefore, DailyLimit: 1 << 30})
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	fake.AddCorp(corp1, "corpsecret1")
	fake.AddComponent(platformComp)
	fake.SetRefreshTokenRotation(platformComp.AppID, 1)
	for _, su := range soakSuites {
		fake.AddSuite(su)
	}
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	hc := newHTTPClient(t)
	s := &soak{t: t, fake: fake, hc: hc, wc: &wechat.Client{API: srv.URL, WeCom: srv.URL, HTTP: hc}, bin: bin,
		rs:       redistest.New(t, redistest.Options{Args: []string{"--appendfsync", "always"}}),
		reported: map[string]time.Time{}, pending: map[int]*pendingReport{},
		violations: map[string]int{}, counts: map[string]int{},
		day: time.Now().In(beijingZone).Format(time.DateOnly)}

	refresh := fmt.Sprintf("{overlap: %s, min_force_interval: %s, max_backoff: %s, lock_ttl: %s, resync: %s}",
		soakOverlap, soakMinForce, soakMaxBackoff, soakLockTTL, soakResync)
	yaml := func(inst int) string {
		return faultYAML(fmt.Sprintf(`store: {type: redis, addrs: ["%s"]}`, s.rs.Addr()), s.proxy(inst),
			soakTimeout, refresh, faultCredentials+platformCredentials()+soakSuiteCredentials())
	}
	// The first instance receives WeChat's pushes to the platform, and
	// the suites' installs: it is never stopped. The suites' tickets go
	// to any instance up (pushTicket).
	s.nodes = append(s.nodes, startNode(t, yaml(0)))
	fake.SetPushTarget(platformComp.AppID, "http://"+s.nodes[0].addr()+"/callback/component/plat", nil)
	awaitToken(t, hc, s.nodes[0].addr(), "plat", 10*time.Millisecond, 15*time.Second, nil)
	for _, su := range soakSuites {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		err := s.pushTicket(ctx, su.SuiteID)
		cancel()
		if err != nil {
			t.Fatalf("push %s its first suite_ticket: %v", su.SuiteID, err)
		}
		awaitToken(t, hc, s.nodes[0].addr(), su.SuiteID, 10*time.Millisecond, 15*time.Second, nil)
	}
	s.nodes = append(s.nodes, startNode(t, yaml(1)))
	s.conf = filepath.Join(t.TempDir(), "wxtoken.yaml")
	if err := os.WriteFile(s.conf, []byte(yaml(soakBinary)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.startBinary()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.binAddr != "" {
			s.binCmd.Process.Kill()
			s.binCmd.Wait()
		}
	})
	for _, a := range soakAuthorizers {
		if _, err := fake.Authorize(t.Context(), platformComp.AppID, a); err != nil {
			t.Fatalf("authorize %s: %v", a, err)
		}
	}
	// An install's create_auth is answered once its permanent code is
	// stored, which then holds for the soak: WeCom never pushes the
	// code again.
	for _, c := range soakCorps {
		suite, corp, _ := strings.Cut(c, "/")
		s.fake.SetPushTarget(suite, s.callbackURL(s.nodes[0].addr(), suite), s.hc)
		if _, err := fake.CreateAuth(t.Context(), suite, corp); err != nil {
			t.Fatalf("install %s in %s: %v", suite, corp, err)
		}
	}
	for _, addr := range s.addrs() {
		for _, id := range soakIDs {
			awaitToken(t, hc, addr, id, 10*time.Millisecond, 15*time.Second, nil)
		}
	}
	s.pushes = fake.Stats(platformComp.AppID).StartPushCalls
	s.begin = time.Now()
	return s
}

// proxy is instance inst's way to the fake: it logs each token call with
// its credential and times, so that calls can be told apart by instance,
// and fails the soak when WeCom's answer says something durable of a
// suite was lost.
func (s *soak) proxy(inst int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred := tokenCallOf(r)
		start := time.Now()
		tw := &soakTee{ResponseWriter: w}
		s.fake.ServeHTTP(tw, r)
		if what := soakSuiteLoss(r, tw.head); what != "" {
			s.violate(what, "instance %d called %s for %s; WeCom answered %s", inst, r.URL.Path, cred, tw.head)
		}
		if cred != "" {
			s.mu.Lock()
			s.calls = append(s.calls, upCall{inst: inst, cred: cred, start: start, end: time.Now()})
			s.mu.Unlock()
		}
	}))
	s.t.Cleanup(srv.Close)
	return srv.URL
}

// tokenCallOf names the soak credential a token call is for, "" for
// other calls.
func tokenCallOf(r *http.Request) string {
	switch r.URL.Path {
	case "/cgi-bin/token":
		return "wx1"
	case "/cgi-bin/stable_token":
		return "wx2"
	case "/cgi-bin/gettoken":
		// A custom app's corp token comes from gettoken, with the
		// corp's corpid and its permanent code as the secret.
		if corp := r.URL.Query().Get("corpid"); corp == soakCustomCorp {
			return soakCustom.SuiteID + "/" + corp
		}
		return "hr"
	case "/cgi-bin/component/api_component_token":
		return "plat"
	case "/cgi-bin/component/api_authorizer_token":
		var req struct {
			AuthorizerAppID string `json:"authorizer_appid"`
		}
		soakPeekBody(r, &req)
		return req.AuthorizerAppID
	case "/cgi-bin/service/get_suite_token":
		var req struct {
			SuiteID string `json:"suite_id"`
		}
		soakPeekBody(r, &req)
		return req.SuiteID
	case "/cgi-bin/service/get_corp_token":
		// Only the third-party app's corps call it: a custom app's
		// come from gettoken.
		var req struct {
			CorpID string `json:"auth_corpid"`
		}
		soakPeekBody(r, &req)
		return soakSuite.SuiteID + "/" + req.CorpID
	}
	return ""
}

// soakPeekBody decodes r's JSON body into v and leaves the body to be read
// again.
func soakPeekBody(r *http.Request, v any) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	json.Unmarshal(body, v)
}

// soakTee passes a response on and keeps the first KiB of its body.
type soakTee struct {
	http.ResponseWriter
	head []byte
}

func (w *soakTee) Write(p []byte) (int, error) {
	if n := 1024 - len(w.head); n > 0 {
		w.head = append(w.head, p[:min(n, len(p))]...)
	}
	return w.ResponseWriter.Write(p)
}

// soakSuiteLoss names the durable state of a suite that an answer of WeCom
// shows lost, "" for none: the suite_ticket, when get_suite_token answers
// 40085 (the ticket is accepted for 30 minutes while it is the newest or
// the one before, and the soak's pushes are acknowledged before the next
// is made), or a corp's permanent code, which get_corp_token refuses with
// 40084 and gettoken, where a custom app's permanent code is the corp's
// app secret, with 40001.
func soakSuiteLoss(r *http.Request, answer []byte) string {
	var a struct {
		ErrCode int `json:"errcode"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return "" // a fault's HTTP error, or a hung call
	}
	switch {
	case r.URL.Path == "/cgi-bin/service/get_suite_token" && a.ErrCode == wechat.CodeBadSuiteTicket:
		return "WeCom refused a suite_ticket"
	case r.URL.Path == "/cgi-bin/service/get_corp_token" && a.ErrCode == wechat.CodeBadPermanentCode,
		r.URL.Path == "/cgi-bin/gettoken" && r.URL.Query().Get("corpid") == soakCustomCorp && a.ErrCode == wechat.CodeInvalidCredential:
		return "a permanent code was lost"
	}
	return ""
}

// addrs are the instances up now.
func (s *soak) addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.nodes {
		out = append(out, n.addr())
	}
	if s.binAddr != "" {
		out = append(out, s.binAddr)
	}
	return out
}

func (s *soak) pick(rng *rand.Rand) string {
	a := s.addrs()
	return a[rng.IntN(len(a))]
}

// at is a moment as an offset into the soak, for messages.
func (s *soak) at(t time.Time) string { return "+" + t.Sub(s.begin).Round(time.Millisecond).String() }

// violate records a broken invariant: the first few of each kind fail the
// test with details, the rest are counted in the summary.
func (s *soak) violate(kind, format string, args ...any) {
	s.mu.Lock()
	s.violations[kind]++
	n := s.violations[kind]
	s.mu.Unlock()
	if n <= 3 {
		s.t.Errorf("%s at %s: %s", kind, s.at(time.Now()), fmt.Sprintf(format, args...))
	}
}

func (s *soak) count(what string) {
	s.mu.Lock()
	s.counts[what]++
	s.mu.Unlock()
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// client is a business server: it asks a random instance for id's token,
// caches it for expires_in, uses it at WeChat, and reports it when WeChat
// refuses it.
func (s *soak) client(ctx context.Context, no int, id string, rng *rand.Rand) {
	var tok, from string
	var asked, until time.Time
	for ctx.Err() == nil {
		if tok == "" || !time.Now().Before(until) {
			from, asked = s.pick(rng), time.Now()
			status, tr, err := askToken(ctx, s.hc, from, id)
			if err != nil || status != http.StatusOK {
				tok = ""
				pause(ctx, 50*time.Millisecond)
				continue
			}
			tok, until = tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second)
			s.served(id, tok, from, asked)
		}
		err := s.use(ctx, id, tok)
		switch code := wechat.ErrCode(err); {
		case err == nil:
			s.count("uses")
			s.mu.Lock()
			delete(s.pending, no)
			s.mu.Unlock()
			pause(ctx, time.Duration(50+rng.IntN(100))*time.Millisecond)
		case soakDeadCode(code):
			s.deadUse(id, tok, from, asked, code)
			s.mu.Lock()
			if s.pending[no] == nil {
				s.pending[no] = &pendingReport{since: time.Now()}
			}
			s.mu.Unlock()
			var tr tokenReply
			var ok bool
			if tr, from, asked, ok = s.report(ctx, rng, id, tok); !ok {
				return
			}
			tok, until = tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second)
			s.served(id, tok, from, asked)
		case ctx.Err() == nil:
			s.violate("a use failed", "%s: %v", id, err) // the fake is always up
			pause(ctx, 50*time.Millisecond)
		}
	}
}

// use makes one call with id's token, as a business server would, and
// returns WeChat's refusal, nil if it accepted the token.
func (s *soak) use(ctx context.Context, id, tok string) error {
	switch {
	case id == soakSuite.SuiteID || id == soakCustom.SuiteID:
		// A suite token is used at the service APIs: get_permanent_code
		// checks the token before the code, so a code WeCom never
		// issued answers 40078 to a working token.
		_, err := s.wc.PermanentCode(ctx, tok, "authcode@@@never-issued", false)
		if wechat.ErrCode(err) == wechat.CodeBadAuthCode {
			return nil
		}
		return err
	case slices.Contains(soakCorps, id):
		// A corp token is a WeCom application's token, which
		// get_api_domain_ip takes.
		_, err := s.wc.WeComAPIDomainIP(ctx, tok)
		return err
	}
	_, err := s.wc.CallbackIP(ctx, tok)
	return err
}

// soakDeadCode reports whether WeChat refused a token as dead: 40001, 42001
// or 40014 for an access token, 40082 or 42009 for a suite token.
func soakDeadCode(code int) bool {
	switch code {
	case wechat.CodeInvalidCredential, wechat.CodeTokenExpired, wechat.CodeInvalidToken,
		wechat.CodeBadSuiteToken, wechat.CodeSuiteTokenExpired:
		return true
	}
	return false
}

// report tells random instances that stale failed until one answers with
// another token.
func (s *soak) report(ctx context.Context, rng *rand.Rand, id, stale string) (tokenReply, string, time.Time, bool) {
	for {
		addr, asked := s.pick(rng), time.Now()
		status, tr, err := reportToken(ctx, s.hc, addr, id, stale)
		if ctx.Err() != nil {
			return tokenReply{}, "", time.Time{}, false
		}
		s.count("reports")
		switch {
		case err == nil && status == http.StatusOK && tr.AccessToken != stale:
			s.mu.Lock()
			if _, seen := s.reported[stale]; !seen {
				s.reported[stale] = time.Now()
			}
			s.mu.Unlock()
			return tr, addr, asked, true
		case err == nil && status == http.StatusOK:
			s.violate("a report was answered with the reported token", "%s on %s: %s", id, addr, prefix(stale))
		}
		// 429 (too soon after a fetch), 502 (WeChat failed), 503 (no
		// token, or Redis down), or the instance was killed: try again.
		pause(ctx, time.Duration(100+rng.IntN(100))*time.Millisecond)
	}
}

func prefix(tok string) string { return tok[:min(len(tok), 8)] + "…" }

// served checks a token an instance handed out, asked for at asked: it
// must not be one reported dead and answered with another more than
// soakReportGrace earlier. Redis being down excuses it (peers cannot hear
// of the report), and so does Redis having been down within a token's
// lifetime before the report: the answer may have come from a token its
// instance fetched but could not store, which it stores only at its next
// refresh.
func (s *soak) served(id, tok, from string, asked time.Time) {
	s.count("tokens served")
	s.mu.Lock()
	rep, ok := s.reported[tok]
	down := s.redisDownDuring(rep.Add(-soakLifetime), asked)
	s.mu.Unlock()
	if ok && asked.Sub(rep) > soakReportGrace && !down {
		s.violate("a token reported dead was still served", "%s: %s served %s %v after a report of it was answered with another token",
			id, from, prefix(tok), asked.Sub(rep).Round(time.Millisecond))
	}
}

// deadUse judges a use WeChat refused: a token it ended early is excused
// (no server can foresee Expire; served checks it is not served long
// after its report); any other dead token should never have been served.
func (s *soak) deadUse(id, tok, from string, asked time.Time, code int) {
	info, known := s.fake.TokenInfo(tok)
	switch {
	case !known:
		s.violate("a token WeChat never issued was served", "%s: %s served %s", id, from, prefix(tok))
	case info.Killed:
		s.count("uses of tokens WeChat ended early")
	default:
		why := "its lifetime ended at " + s.at(info.Expires)
		if !info.Dies.IsZero() && time.Now().After(info.Dies) {
			why = "it was replaced and died at " + s.at(info.Dies)
		}
		s.violate("a dead token was served", "%s: %s served %s (asked at %s); WeChat answered %d: %s",
			id, from, prefix(tok), s.at(asked), code, why)
	}
}

// redisDownDuring reports whether Redis was down at some moment of
// [from, to]; s.mu is held.
func (s *soak) redisDownDuring(from, to time.Time) bool {
	for _, d := range s.redisDown {
		if d.from.Before(to) && (d.to.IsZero() || d.to.After(from)) {
			return true
		}
	}
	return false
}

// calmSince is when the last disturbance that can delay a refresh ended:
// now while WeChat or Redis is down. A killed binary may hold a lease for
// lock_ttl; an Expire makes every holder of the account's tokens report.
func (s *soak) calmSince(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	calm := later(s.expired, s.faultEnded)
	if s.fault != nil {
		calm = now
	}
	for _, d := range s.redisDown {
		if d.to.IsZero() {
			calm = now
		}
		calm = later(calm, d.to)
	}
	for _, k := range s.kills {
		calm = later(calm, k.Add(soakLockTTL))
	}
	return calm
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// monitor checks, every quarter second, that every report recovers, and
// that nothing durable was lost.
func (s *soak) monitor(ctx context.Context) {
	rng := rand.New(rand.NewPCG(1, 1))
	for ctx.Err() == nil {
		pause(ctx, 250*time.Millisecond)
		now := time.Now()
		calm := s.calmSince(now)
		s.mu.Lock()
		var late []time.Time
		for _, p := range s.pending {
			if !p.flagged && now.Sub(later(p.since, calm)) > soakRecover {
				p.flagged = true
				late = append(late, p.since)
			}
		}
		s.mu.Unlock()
		for _, since := range late {
			s.violate("a report did not recover", "reported at %s, calm since %s: no working token within %v",
				s.at(since), s.at(calm), soakRecover)
		}
		s.checkDurable(ctx, s.pick(rng))
	}
}

// checkDurable looks for a lost ticket or refresh token: a ticket push
// asked of WeChat, a ticket cause, or an authorization lost (61023).
func (s *soak) checkDurable(ctx context.Context, addr string) {
	n := s.fake.Stats(platformComp.AppID).StartPushCalls
	s.mu.Lock()
	more := n - s.pushes
	s.pushes = max(s.pushes, n)
	s.mu.Unlock()
	if more > 0 {
		s.violate("the ticket was lost", "the platform asked WeChat for a ticket push %d times", more)
	}
	list, err := listTokens(s.t, s.hc, addr)
	if err != nil || ctx.Err() != nil {
		return // an instance killed, or the soak ending
	}
	for _, id := range soakIDs {
		c := list[id].Cause
		switch {
		case list[id].State == "revoked" || c != nil && (c.ErrCode == wechat.CodeRefreshInvalid || c.Class == "revoked"):
			s.violate("an authorization was lost", "%s on %s: state %s, cause %+v", id, addr, list[id].State, c)
		case c != nil && (c.Class == "ticket" || c.ErrCode == 61005 || c.ErrCode == 61006):
			s.violate("the ticket was lost", "%s on %s: cause %+v", id, addr, c)
		}
	}
}

// chaosEvent is one step of a soak's plan.
type chaosEvent struct {
	at   time.Duration // offset into the soak, not counting quiet points
	what string        // see chaosPlan
	// A fault's kind (an index in soakFaults), account ("" for all) and
	// length; Expire's account; Redis killed rather than stopped.
	fault   int
	account string
	length  time.Duration
	hard    bool
}

func (e chaosEvent) String() string {
	at := "+" + e.at.Round(10*time.Millisecond).String()
	switch e.what {
	case "fault":
		scope := e.account
		if scope == "" {
			scope = "every account"
		}
		return fmt.Sprintf("%s %s for %s, %v", at, soakFaults[e.fault].name, scope, e.length.Round(10*time.Millisecond))
	case "expire":
		return at + " expire " + e.account
	case "stop redis":
		if e.hard {
			return at + " kill -9 redis"
		}
	}
	return at + " " + e.what
}

// chaosPlan draws a soak's events from seed: every 0.3 to 1.5 s, WeChat
// starts failing ("fault", for 1 to 10 s, ended by "clear"), an account's
// tokens are ended early ("expire"), the binary is killed ("kill",
// started again 0.5 to 3 s later, once Redis is up: "start binary"), or
// Redis is stopped or killed ("stop redis", started again 0.5 to 4 s
// later: "start redis"); or nothing happens. At most one of each is under
// way at a time. Every soakQuietEvery, and at the end, a "quiet" point
// ends them all. The plan depends on the seed alone, so a seed replays
// the same events at the same offsets (quiet points take what they take,
// and the plan waits for them).
func chaosPlan(seed uint64, length time.Duration) []chaosEvent {
	rng := rand.New(rand.NewPCG(seed, 0))
	var plan []chaosEvent
	var v, faultUntil, redisUpAt, binUpAt time.Duration
	faultOn, redisDown, binDown := false, false, false
	nextQuiet := soakQuietEvery
	for v < length {
		// Every step draws the same numbers whatever it does.
		v += time.Duration(300+rng.IntN(1200)) * time.Millisecond
		what, a, b, c := rng.IntN(10), rng.IntN(1000), rng.IntN(1000), rng.IntN(1000)
		if faultOn && v >= faultUntil {
			plan, faultOn = append(plan, chaosEvent{at: v, what: "clear"}), false
		}
		if redisDown && v >= redisUpAt {
			plan, redisDown = append(plan, chaosEvent{at: v, what: "start redis"}), false
		}
		if binDown && v >= binUpAt && !redisDown {
			plan, binDown = append(plan, chaosEvent{at: v, what: "start binary"}), false
		}
		if v >= nextQuiet {
			plan = append(plan, chaosEvent{at: v, what: "quiet"})
			faultOn, redisDown, binDown = false, false, false
			nextQuiet = v + soakQuietEvery
			continue
		}
		switch {
		case what <= 2 && !faultOn:
			e := chaosEvent{at: v, what: "fault", fault: a % len(soakFaults),
				length: time.Second + time.Duration(c)*9*time.Millisecond}
			if b%3 == 0 { // one account in three outages, else all
				e.account = soakAccounts[(b/3)%len(soakAccounts)]
			}
			plan, faultOn, faultUntil = append(plan, e), true, v+e.length
		case what == 3 || what == 4:
			plan = append(plan, chaosEvent{at: v, what: "expire", account: soakAccounts[a%len(soakAccounts)]})
		case what == 5 && !binDown:
			plan, binDown, binUpAt = append(plan, chaosEvent{at: v, what: "kill"}), true, v+500*time.Millisecond+time.Duration(a)*5*time.Millisecond/2
		case what == 6 && !redisDown:
			plan = append(plan, chaosEvent{at: v, what: "stop redis", hard: a%2 == 1})
			redisDown, redisUpAt = true, v+500*time.Millisecond+time.Duration(b)*7*time.Millisecond/2
		}
	}
	if len(plan) == 0 || plan[len(plan)-1].what != "quiet" {
		plan = append(plan, chaosEvent{at: v, what: "quiet"})
	}
	return plan
}

// chaos runs the plan.
func (s *soak) chaos(plan []chaosEvent) {
	var paused time.Duration // spent in quiet points
	for _, e := range plan {
		time.Sleep(time.Until(s.begin.Add(e.at + paused)))
		switch e.what {
		case "fault":
			s.startFault(e)
		case "clear":
			s.endFault()
		case "expire":
			s.fake.Expire(e.account)
			s.mu.Lock()
			s.expired = time.Now()
			s.mu.Unlock()
			s.count("tokens ended early")
		case "kill":
			s.killBinary()
		case "start binary":
			s.startBinary()
		case "stop redis":
			s.stopRedis(e.hard)
		case "start redis":
			s.startRedis()
		case "quiet":
			q := time.Now()
			s.quiet()
			paused += time.Since(q)
		}
	}
}

// soakFaults are the failures WeChat has in the soak; a hung call fails
// at upstream.timeout.
var soakFaults = []struct {
	name  string
	fault wxtest.Fault
}{
	{"errcode -1", wxtest.Fault{ErrCode: -1}},
	{"HTTP 502", wxtest.Fault{Status: http.StatusBadGateway}},
	{"HTTP 503", wxtest.Fault{Status: http.StatusServiceUnavailable}},
	{"hang", wxtest.Fault{Hang: true}},
}

// startFault makes WeChat fail.
func (s *soak) startFault(e chaosEvent) {
	run := &faultRun{kind: soakFaults[e.fault].name, account: e.account, from: time.Now(), before: map[string]int{}}
	for _, id := range faulted(e.account) {
		run.before[id] = soakTokenCalls(s.fake, id)
	}
	s.fake.SetFault(e.account, soakFaults[e.fault].fault)
	s.mu.Lock()
	s.fault = run
	s.mu.Unlock()
	s.count("WeChat outages")
}

// endFault ends the outage and holds each credential's calls during it to
// the backoff schedule.
func (s *soak) endFault() {
	run := s.fault
	during := map[string]int{}
	for _, id := range faulted(run.account) {
		during[id] = soakTokenCalls(s.fake, id) - run.before[id]
	}
	end := time.Now()
	s.fake.ClearFault(run.account)
	s.mu.Lock()
	s.fault, s.faultEnded = nil, end
	s.mu.Unlock()

	bound, parts := s.callBound(run.from, end)
	scope := run.account
	if scope == "" {
		scope = "every account"
	}
	var got []string
	for _, id := range faulted(run.account) {
		got = append(got, fmt.Sprintf("%s %d", id, during[id]))
		if during[id] > bound {
			s.violate("too many calls during a WeChat outage", "%s made %d token calls during %v of %s for %s (%s to %s); want at most %d (%s)",
				id, during[id], end.Sub(run.from).Round(time.Millisecond), run.kind, scope, s.at(run.from), s.at(end), bound, parts)
		}
	}
	s.t.Logf("outage %s to %s, %s for %s: calls %s; bound %d (%s)",
		s.at(run.from), s.at(end), run.kind, scope, strings.Join(got, ", "), bound, parts)
}

// callBound is the most token calls one credential may make in [from,
// to] while WeChat fails: one backoff schedule, at the worst expiry of
// its token; one forced refresh per min_force_interval (reports of tokens
// WeChat ended early; each call, failed or not, restarts that interval);
// one call per Redis start and per start or kill of the binary in the
// window (a store coming back retries at once; an instance killed
// mid-call leaves its call uncounted in the record, and a new one reads
// the record afresh); and the calls racing the outage's two ends.
func (s *soak) callBound(from, to time.Time) (int, string) {
	sched := engineBackoff(soakMaxBackoff).worstAttempts(from, to)
	forced := int(to.Sub(from)/soakMinForce) + 1
	s.mu.Lock()
	restarts := 0
	in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
	for _, d := range s.redisDown {
		if !d.to.IsZero() && in(d.to) {
			restarts++
		}
	}
	for _, k := range slices.Concat(s.kills, s.binStarts) {
		if in(k) {
			restarts++
		}
	}
	s.mu.Unlock()
	return sched + forced + restarts + stormSlack,
		fmt.Sprintf("schedule %d + forced %d + restarts %d + slack %d", sched, forced, restarts, stormSlack)
}

// worstAttempts is attempts at the worst expiry of the token: any moment
// from already expired to long after the window, in 50 ms steps, or
// never.
func (sc backoffSchedule) worstAttempts(from, to time.Time) int {
	worst := sc.attempts(from, to, from.Add(100*365*24*time.Hour))
	for exp := from; !exp.After(to.Add(4 * sc.max)); exp = exp.Add(50 * time.Millisecond) {
		worst = max(worst, sc.attempts(from, to, exp))
	}
	return worst
}

// killBinary kills the binary with SIGKILL.
func (s *soak) killBinary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.binCmd.Process.Kill()
	s.binCmd.Wait()
	s.binAddr = ""
	s.kills = append(s.kills, time.Now())
	s.counts["kill -9 of the binary"]++
}

func (s *soak) startBinary() {
	cmd, addr := startBinary(s.t, s.bin, s.conf)
	s.mu.Lock()
	s.binCmd, s.binAddr = cmd, addr
	s.binStarts = append(s.binStarts, time.Now())
	s.mu.Unlock()
}

func (s *soak) isRedisDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.redisDown) > 0 && s.redisDown[len(s.redisDown)-1].to.IsZero()
}

// stopRedis stops Redis (SIGTERM, which flushes its files) or kills it
// (SIGKILL: only what it wrote survives).
func (s *soak) stopRedis(hard bool) {
	how := "stop"
	if hard {
		s.rs.Kill()
		how = "kill -9"
	} else {
		s.rs.Stop()
	}
	s.mu.Lock()
	s.redisDown = append(s.redisDown, span{from: time.Now()})
	s.counts["Redis "+how]++
	s.mu.Unlock()
}

func (s *soak) startRedis() {
	s.rs.Start()
	s.mu.Lock()
	s.redisDown[len(s.redisDown)-1].to = time.Now()
	s.mu.Unlock()
}

// lost is how many of id's token calls may be missing from the day's
// counter: those that ended at most soakWriteAfter before a kill of the
// instance that made them, or before, during or up to soakWriteAfter
// after a Redis outage. An instance fetching a stable or repeating WeCom
// token alone while it cannot reach Redis (its client may still be
// reconnecting just after Redis is back) counts the call in its memory,
// and that count is lost if a peer writes the record first.
func (s *soak) lost(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.cred != id {
			continue
		}
		risky := false
		for _, k := range s.kills {
			risky = risky || c.inst == soakBinary && !c.end.Before(k.Add(-soakWriteAfter)) && !c.start.After(k)
		}
		for _, d := range s.redisDown {
			risky = risky || !c.end.Before(d.from.Add(-soakWriteAfter)) && (d.to.IsZero() || !c.start.After(d.to.Add(soakWriteAfter)))
		}
		if risky {
			n++
		}
	}
	return n
}

// quiet ends every disturbance, then checks that every instance serves
// every credential a working token within soakRecover, and that the
// day's counters agree with WeChat's.
func (s *soak) quiet() {
	if s.fault != nil {
		s.endFault()
	}
	if s.isRedisDown() {
		s.startRedis()
	}
	if s.binAddr == "" {
		s.startBinary()
	}
	begin := time.Now()
	deadline := begin.Add(soakRecover)
	addrs := s.addrs()
	for _, addr := range addrs {
		for _, id := range soakIDs {
			s.obtain(addr, id, deadline)
		}
	}
	served := time.Since(begin)
	if day := time.Now().In(beijingZone).Format(time.DateOnly); day != s.day {
		s.t.Logf("quiet point at %s: the Beijing day changed, counters restarted; not compared", s.at(begin))
		return
	}
	calls := func(id string) int { return soakTokenCalls(s.fake, id) }
	if err := countersAgree(s.t, s.hc, calls, addrs, soakIDs, s.lost); err != nil {
		s.violate("counters disagree with WeChat", "%v", err)
	}
	s.checkDurable(s.t.Context(), addrs[0])
	s.checkPermanentCodes()
	s.t.Logf("quiet point at %s: every instance served every credential a working token within %v", s.at(begin), served.Round(time.Millisecond))
}

// checkPermanentCodes reads each corp's record from the store: its
// permanent code must be the one WeCom holds now. No call refuses a
// code WeCom still holds, so this is how a code lost and replaced by an
// older one would show.
func (s *soak) checkPermanentCodes() {
	for _, id := range soakCorps {
		suite, corp, _ := strings.Cut(id, "/")
		ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
		ent, err := s.nodes[0].m.store.Get(ctx, "token/"+id)
		cancel()
		var rec token.Stored
		if err == nil {
			rec, err = token.DecodeStored(ent.Value)
		}
		switch want := s.fake.SuitePermanentCode(suite, corp); {
		case err != nil:
			s.violate("a permanent code was lost", "%s: reading its record: %v", id, err)
		case want == "":
			s.violate("a permanent code was lost", "%s: WeCom holds no working permanent code", id)
		case rec.State != want:
			s.violate("a permanent code was lost", "%s: the stored permanent code (%d bytes) is not the one WeCom holds", id, len(rec.State))
		}
	}
}

// callbackURL is the command callback URL of suiteID at the instance at
// addr.
func (s *soak) callbackURL(addr, suiteID string) string {
	return "http://" + addr + "/callback/suite/" + suiteID
}

// pushTickets pushes each suite a suite_ticket every soakPushEvery until
// ctx is done.
func (s *soak) pushTickets(ctx context.Context) {
	for ctx.Err() == nil {
		pause(ctx, soakPushEvery)
		for _, su := range soakSuites {
			s.pushTicket(ctx, su.SuiteID) // a failure is a violation, or ctx ending
		}
	}
}

// pushTicket plays WeCom pushing a suite's suite_ticket: a new ticket,
// sent to the next instance up (as a load balancer in front of them
// would), and, while no instance acknowledges it with "success", sent
// again to the next, as WeCom delivers a callback again when it is not
// acknowledged. WeCom accepts the newest ticket and the one before, so
// making the next ticket only once this one is acknowledged keeps a
// ticket WeCom accepts stored through Redis outages and kills: a 40085
// would mean the server lost one it had acknowledged. It returns nil once
// an instance acknowledged the push, else the last failure when ctx is
// done.
func (s *soak) pushTicket(ctx context.Context, suiteID string) error {
	var ticket string
	var created int64
	for {
		addrs := s.addrs()
		addr := addrs[s.pushNext%len(addrs)]
		s.pushNext++
		s.fake.SetPushTarget(suiteID, s.callbackURL(addr, suiteID), s.hc)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		if ticket == "" {
			created = time.Now().Unix()
			ticket, err = s.fake.PushSuiteTicket(pctx, suiteID)
			s.count("suite_tickets pushed")
		} else {
			// The same push again: WeCom's TimeStamp is when it made the
			// ticket, and the fake's is this second or the next.
			plain := fmt.Sprintf("<xml><SuiteId><![CDATA[%s]]></SuiteId><InfoType><![CDATA[%s]]></InfoType>"+
				"<TimeStamp>%d</TimeStamp><SuiteTicket><![CDATA[%s]]></SuiteTicket></xml>",
				suiteID, callback.InfoSuiteTicket, created, ticket)
			var status int
			var body string
			status, body, err = s.fake.PushSuiteRaw(pctx, suiteID, []byte(plain), nil)
			if err == nil && (status != http.StatusOK || body != "success") {
				err = fmt.Errorf("status %d, %.64q", status, body)
			}
			s.count("suite_ticket pushes delivered again")
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case ticket == "":
			s.violate("a suite_ticket was not made", "%s: %v", suiteID, err)
			return err
		case ctx.Err() != nil:
			return err
		}
		pause(ctx, 200*time.Millisecond)
	}
}

// obtain asks addr for id's token until it serves one WeChat accepts,
// reporting tokens WeChat ended early, as a business server would.
func (s *soak) obtain(addr, id string, deadline time.Time) {
	ctx := s.t.Context()
	var last string
	for time.Now().Before(deadline) {
		asked := time.Now()
		status, tr, err := askToken(ctx, s.hc, addr, id)
		if err != nil || status != http.StatusOK {
			last = fmt.Sprintf("status %d, %v", status, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.served(id, tr.AccessToken, addr, asked)
		err = s.use(ctx, id, tr.AccessToken)
		if err == nil {
			return
		}
		last = err.Error()
		if code := wechat.ErrCode(err); soakDeadCode(code) {
			s.deadUse(id, tr.AccessToken, addr, asked, code)
			if status, tr2, err := reportToken(ctx, s.hc, addr, id, tr.AccessToken); err == nil && status == http.StatusOK && tr2.AccessToken != tr.AccessToken {
				s.mu.Lock()
				if _, seen := s.reported[tr.AccessToken]; !seen {
					s.reported[tr.AccessToken] = time.Now()
				}
				s.mu.Unlock()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.violate("an instance did not serve after the disturbances ended", "%s on %s: no working token within %v (last: %s)", id, addr, soakRecover, last)
}

// summary logs what the soak did, and counts the broken invariants
// beyond the few reported in detail.
func (s *soak) summary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.counts[k]))
	}
	s.t.Logf("soak of %v: %s", time.Since(s.begin).Round(time.Second), strings.Join(parts, ", "))
	for _, k := range slices.Sorted(maps.Keys(s.violations)) {
		s.t.Errorf("%s: %d times in all", k, s.violations[k])
	}
}
