package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// WeChat failing fast (errcode -1, an HTTP 502 from its gateway) while
// tokens are due must cost the retries of one backoff schedule per
// credential, however many instances share the store: the schedule is a
// property of the credential, kept in the shared record, not of each
// instance. These tests count the fake's calls during outages and hold
// them to that schedule.

// faultCredentials are a classic and a stable app and a WeCom application,
// as YAML list items.
const faultCredentials = mpCredentials + `
  - {id: hr, kind: wecom, corpid: ` + corp1 + `, secret: corpsecret1}`

// corp1 is the fake's WeCom corp behind the credential hr.
const corp1 = "ww0000000000000001"

// faultUpstream runs the fake with the accounts of faultCredentials and no
// daily limit that an outage's retries could reach (a storm would
// otherwise end in 45009 and hide its size).
func faultUpstream(t *testing.T, lifetime, overlap time.Duration) (*wxtest.Fake, string) {
	t.Helper()
	fake, up := upstream(t, wxtest.Config{Lifetime: lifetime, Overlap: overlap,
		StableRenewBefore: stableRenewBefore, DailyLimit: 1 << 30})
	fake.AddCorp(corp1, "corpsecret1")
	return fake, up
}

// tokenCalls reads the fake's count of token calls, failed ones included,
// of a credential the fault tests configure.
func tokenCalls(fake *wxtest.Fake, id string) int {
	switch id {
	case "wx1":
		return fake.Stats(app1).ClassicCalls
	case "wx2":
		return fake.Stats(app2).StableCalls
	case "hr":
		return fake.Stats(corp1).WeComCalls
	case "plat":
		return fake.Stats(platformComp.AppID).ComponentTokenCalls
	}
	return fake.Stats(id).AuthorizerTokenCalls // an authorizer
}

// faultYAML is an instance's configuration with both WeChat hosts at up
// (and no failover host). storeLine is a YAML line choosing the store.
func faultYAML(storeLine, up string, timeout time.Duration, refresh, creds string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
%s
upstream: {api: %s, wecom: %s, timeout: %s}
refresh: %s
credentials:%s
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, storeLine, up, up, timeout, refresh, creds, clientKey)
}

// credStatus is one credential in GET /v1/tokens.
type credStatus struct {
	ID           string    `json:"id"`
	Owner        string    `json:"component"`
	State        string    `json:"state"`
	ExpiresAt    time.Time `json:"expires_at"`
	NextRefresh  time.Time `json:"next_refresh"`
	FetchesToday int       `json:"fetches_today"`
	Cause        *struct {
		Class   string `json:"class"`
		ErrCode int    `json:"errcode"`
	} `json:"cause"`
}

// listTokens is GET /v1/tokens, by credential id.
func listTokens(t *testing.T, hc *http.Client, addr string) (map[string]credStatus, error) {
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/tokens: status %d", resp.StatusCode)
	}
	var body struct{ Credentials []credStatus }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]credStatus{}
	for _, c := range body.Credentials {
		out[c.ID] = c
		if c.Owner != "" {
			// An authorizer, also by its appid, as WeChat counts it.
			out[strings.TrimPrefix(c.ID, c.Owner+"/")] = c
		}
	}
	return out, nil
}

// backoffSchedule is the retry schedule of a transient failure (README,
// "How it behaves"): after the k-th failure in a row the next attempt
// waits min(base·2^(k-1), limit), jittered by ±20%, where limit is
// refresh.max_backoff and, while the token is still valid, also a quarter
// of its remaining life, though never less than base (the planner's floor;
// without one, attempts would crowd together as expiry nears).
type backoffSchedule struct {
	base, max time.Duration
}

// engineBackoff is the engine's schedule under max_backoff: base is
// token.Config.BaseBackoff's default, which configuration does not change.
func engineBackoff(maxBackoff time.Duration) backoffSchedule {
	return backoffSchedule{base: time.Second, max: maxBackoff}
}

// wait is the shortest wait after failure k at now, for a token expiring
// at expires: the jitter at its worst, -20%.
func (s backoffSchedule) wait(k int, now, expires time.Time) time.Duration {
	limit := s.max
	if left := expires.Sub(now); left > 0 {
		limit = min(limit, max(left/4, s.base))
	}
	d := s.base
	for i := 1; i < k && d < limit; i++ {
		d *= 2
	}
	return min(d, limit) * 8 / 10
}

// attempts is the most upstream calls that one credential, its token
// expiring at expires, can make in [from, to] under the schedule: the
// first at from, each next one as early as the schedule allows. Earlier is
// never worse here: t + wait(k, t) does not decrease as t grows (the
// quarter-life limit shrinks at a quarter of the rate time passes, and
// jumps up at expiry), so the earliest attempts give the most of them.
// The wait is taken at the attempt, not at its failure, which is later
// and can only make the real schedule sparser.
func (s backoffSchedule) attempts(from, to, expires time.Time) int {
	n := 0
	for t, k := from, 1; !t.After(to); k++ {
		n++
		t = t.Add(s.wait(k, t, expires))
	}
	return n
}

// TestBackoffScheduleAttempts pins the bound the outage tests use to the
// schedule by hand: 8 s tokens due at 6 s, max_backoff 3 s.
func TestBackoffScheduleAttempts(t *testing.T) {
	s := engineBackoff(3 * time.Second)
	t0 := time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC)
	exp := t0.Add(2 * time.Second) // due with 2 s of life left
	tests := []struct {
		window time.Duration
		want   int
	}{
		// Waits of 0.8 s while 2 s of life remain (a quarter is under the
		// 1 s floor): attempts at 0, 0.8, 1.6, 2.4; then, expired, the
		// exponential is already at 8 s and capped to 3 s: 2.4 s apart.
		{0, 1},
		{2 * time.Second, 3},
		{5 * time.Second, 5},     // 0, .8, 1.6, 2.4, 4.8
		{24 * time.Second, 13},   // ... 4.8, 7.2, 9.6, 12, 14.4, 16.8, 19.2, 21.6, 24
		{24*time.Second - 1, 12}, // the last one just outside
	}
	for _, tt := range tests {
		if got := s.attempts(t0, t0.Add(tt.window), exp); got != tt.want {
			t.Errorf("attempts in %v = %d, want %d", tt.window, got, tt.want)
		}
	}
	// A token with long to live: the exponential runs up to max_backoff.
	if got := s.attempts(t0, t0.Add(10*time.Second), t0.Add(time.Hour)); got != 6 { // 0, .8, 2.4, 4.8, 7.2, 9.6
		t.Errorf("attempts in 10 s with an hour of life = %d, want 6", got)
	}
}

// stormSlack is what an outage may cost beyond the schedule on a correct
// engine: the call in flight when the fault starts (counted in the window,
// answered normally) and the one racing its end.
const stormSlack = 2

// stormCase is one row of TestClusterOutageStorm.
type stormCase struct {
	instances int
	bolt      bool // the embedded store (one instance) instead of Redis
	fault     string
	outage    string // "short" (5 s) or "lifetimes" (three token lifetimes)
}

// stormFaults are the fast failures that started the storm.
var stormFaults = map[string]wxtest.Fault{
	"errcode -1": {ErrCode: -1},
	"HTTP 502":   {Status: http.StatusBadGateway},
}

// TestClusterOutageStorm: WeChat answers every token call with a fast
// failure, starting just as the tokens are due, for 5 s or for three token
// lifetimes. Each credential's calls during the outage stay within one
// backoff schedule, the same bound for 1, 3 and 5 instances; afterwards
// every instance serves every credential a token WeChat accepts, and the
// day's counters in GET /v1/tokens are what WeChat counted.
//
// The default run covers the short outage for every instance count and
// fault, the long one for three instances and -1, and the embedded store;
// WXTOKEN_LONG=1 runs the whole table.
func TestClusterOutageStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out outages of real time")
	}
	long := os.Getenv("WXTOKEN_LONG") != ""
	var cases []stormCase
	for _, outage := range []string{"short", "lifetimes"} {
		for _, n := range []int{1, 3, 5} {
			for _, fault := range []string{"errcode -1", "HTTP 502"} {
				if long || outage == "short" || (n == 3 && fault == "errcode -1") {
					cases = append(cases, stormCase{instances: n, fault: fault, outage: outage})
				}
			}
		}
		for _, fault := range []string{"errcode -1", "HTTP 502"} {
			if long || (outage == "short" && fault == "errcode -1") {
				cases = append(cases, stormCase{instances: 1, bolt: true, fault: fault, outage: outage})
			}
		}
	}
	// Every case has its own fake, store and instances, and spends its
	// time waiting: they all run at once, not -parallel at a time.
	var wg sync.WaitGroup
	for _, c := range cases {
		store := "redis"
		if c.bolt {
			store = "bolt"
		}
		wg.Go(func() {
			t.Run(fmt.Sprintf("%s %d, %s, %s", store, c.instances, c.fault, c.outage), func(t *testing.T) {
				outageStorm(t, c)
			})
		})
	}
	wg.Wait()
}

// outageStorm runs one case of TestClusterOutageStorm.
func outageStorm(t *testing.T, c stormCase) {
	const (
		lifetime, overlap = 8 * time.Second, 3 * time.Second
		maxBackoff        = 3 * time.Second
		timeout           = 2 * time.Second
	)
	outage := 5 * time.Second
	if c.outage == "lifetimes" {
		outage = 3 * lifetime
	}
	fake, up := faultUpstream(t, lifetime, overlap)
	refresh := fmt.Sprintf("{overlap: %s, min_force_interval: 1s, max_backoff: %s}", overlap, maxBackoff)
	var nodes []*node
	if c.bolt {
		nodes = []*node{startNode(t, faultYAML("data_dir: "+t.TempDir(), up, timeout, refresh, faultCredentials))}
	} else {
		rs := redistest.New(t, redistest.Options{})
		for range c.instances {
			nodes = append(nodes, startNode(t, faultYAML(fmt.Sprintf(`store: {type: redis, addrs: ["%s"]}`, rs.Addr()), up, timeout, refresh, faultCredentials)))
		}
	}
	hc := newHTTPClient(t)
	wc := &wechat.Client{API: up, WeCom: up, HTTP: hc}
	ids := []string{"wx1", "wx2", "hr"}
	for _, id := range ids {
		want := awaitToken(t, hc, nodes[0].addr(), id, 10*time.Millisecond, 15*time.Second, nil).AccessToken
		for _, n := range nodes[1:] {
			awaitToken(t, hc, n.addr(), id, 10*time.Millisecond, 10*time.Second, func(s string) bool { return s == want })
		}
	}
	day := time.Now().In(beijingZone).Format(time.DateOnly)

	// The outage starts a moment before the first planned refresh: each
	// token's refresh, and every retry of it, meets the fault.
	plan, err := listTokens(t, hc, nodes[0].addr())
	if err != nil {
		t.Fatal(err)
	}
	due := plan["wx1"].NextRefresh
	for _, id := range ids {
		if plan[id].NextRefresh.IsZero() || plan[id].ExpiresAt.IsZero() {
			t.Fatalf("%s has no plan or expiry in GET /v1/tokens: %+v", id, plan[id])
		}
		if plan[id].NextRefresh.Before(due) {
			due = plan[id].NextRefresh
		}
	}
	time.Sleep(time.Until(due.Add(-250 * time.Millisecond)))
	before := map[string]int{}
	for _, id := range ids {
		before[id] = tokenCalls(fake, id)
	}
	start := time.Now()
	fake.SetFault("", stormFaults[c.fault])
	time.Sleep(outage)
	during := map[string]int{}
	for _, id := range ids {
		during[id] = tokenCalls(fake, id) - before[id]
	}
	end := time.Now()
	fake.ClearFault("")

	sched := engineBackoff(maxBackoff)
	for _, id := range ids {
		// The same bound for any number of instances: one schedule per
		// credential, from its own token's expiry.
		bound := sched.attempts(start, end, plan[id].ExpiresAt) + stormSlack
		t.Logf("%s: %d upstream calls in %v of %s across %d instances (bound %d: the backoff schedule's %d + %d)",
			id, during[id], end.Sub(start).Round(time.Millisecond), c.fault, len(nodes), bound, bound-stormSlack, stormSlack)
		if during[id] > bound {
			t.Errorf("%s: %d upstream calls in %v of %s across %d instances, want at most %d (one backoff schedule with max_backoff %v)",
				id, during[id], end.Sub(start).Round(time.Millisecond), c.fault, len(nodes), bound, maxBackoff)
		}
	}

	// Once WeChat answers, the next attempt comes within the longest
	// wait of the schedule (max_backoff, +20%); give it the call and a
	// few seconds for timers and peers' notifications.
	recoverWithin := maxBackoff*12/10 + timeout + 3*time.Second
	for _, n := range nodes {
		for _, id := range ids {
			tok := awaitToken(t, hc, n.addr(), id, 20*time.Millisecond, recoverWithin, nil).AccessToken
			if _, err := wc.CallbackIP(t.Context(), tok); err != nil {
				t.Errorf("%s serves %s after the outage that WeChat refuses: %v", n.addr(), id, err)
			}
		}
	}
	recovered := time.Since(end)

	if now := time.Now().In(beijingZone).Format(time.DateOnly); now != day {
		t.Logf("the Beijing day changed during the test (%s to %s): today's counters restarted, not compared", day, now)
		return
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr())
	}
	if err := countersAgree(t, hc, func(id string) int { return tokenCalls(fake, id) }, addrs, ids, nil); err != nil {
		t.Error(err)
	}
	t.Logf("every instance served every credential %v after the outage", recovered.Round(time.Millisecond))
}

// beijingZone is UTC+8, where WeChat's day (and today's counters) turns.
var beijingZone = time.FixedZone("CST", 8*60*60)

// countersAgree waits until every instance's (at addrs) fetches_today for
// each of ids equals WeChat's count of that credential's token calls
// (calls, read from the fake),
// less at most lost(id) (calls whose count a crash or store outage may
// have lost: nil means none), and says how they differ if that does not
// happen within 5 s.
// Counters move between reads (a planned refresh, a peer's notification
// on its way), so a mismatch is read again rather than reported at once.
func countersAgree(t *testing.T, hc *http.Client, calls func(id string) int, addrs []string, ids []string, lost func(id string) int) error {
	end := time.Now().Add(5 * time.Second)
	for {
		var bad []string
		for _, addr := range addrs {
			list, err := listTokens(t, hc, addr)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", addr, err))
				continue
			}
			for _, id := range ids {
				want, got := calls(id), list[id].FetchesToday
				slack := 0
				if lost != nil {
					slack = lost(id)
				}
				switch {
				case got > want:
					bad = append(bad, fmt.Sprintf("%s on %s: fetches_today %d, WeChat counted %d calls: %d counted that never reached WeChat",
						id, addr, got, want, got-want))
				case got < want-slack:
					bad = append(bad, fmt.Sprintf("%s on %s: fetches_today %d, WeChat counted %d calls, of which %d may be lost to a kill or a store outage",
						id, addr, got, want, slack))
				}
			}
		}
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("today's counters disagree with WeChat's:\n%s", joinLines(bad))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func joinLines(lines []string) string {
	s := ""
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s
}
