package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// The suites of the fault tests: a third-party app, whose corps' tokens
// come from get_corp_token with the suite's token, and a custom-developed
// app template (代开发, an id starting "dk"), whose corps' tokens come from
// gettoken with the permanent code as the app secret (WECHAT.md §7).
var (
	suiteFApp = wxtest.Suite{SuiteID: "ww5e17e0000000f001", Secret: "suite-f-secret", Token: "suite-f-token",
		EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
	suiteFCustom = wxtest.Suite{SuiteID: "dk5e17e0000000f002", Secret: "dk-f-secret", Token: "dk-f-token",
		EncodingAESKey: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"}
)

// suiteFCredential is the suite as a YAML list item of kind suite; its
// credential id defaults to the suite id.
func suiteFCredential(s wxtest.Suite) string {
	return fmt.Sprintf("\n  - {kind: suite, suite_id: %s, suite_secret: %s, token: %s, encoding_aes_key: %s}",
		s.SuiteID, s.Secret, s.Token, s.EncodingAESKey)
}

// suiteFBoltYAML runs the suites on the embedded store in dataDir; the
// client may read each suite's token and its corps' ({suite}/{corpid}).
func suiteFBoltYAML(dataDir, up string, suites ...wxtest.Suite) string {
	var creds, allow []string
	for _, s := range suites {
		creds = append(creds, suiteFCredential(s))
		allow = append(allow, s.SuiteID, s.SuiteID+"/*")
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
upstream: {api: %s, wecom: %s, api_failover: [], timeout: 2s}
refresh: {overlap: 3s, min_force_interval: 1s}
credentials:%s
clients:
  - {name: e2e, key: %s, allow: [%s]}
`, dataDir, up, up, strings.Join(creds, ""), clientKey, strings.Join(allow, ", "))
}

// suiteFPushTo sends the suite's pushes to the instance at addr, at the
// command callback its kind declares: /callback/suite/{id}.
func suiteFPushTo(fake *wxtest.Fake, s wxtest.Suite, addr string) {
	fake.SetPushTarget(s.SuiteID, "http://"+addr+"/callback/suite/"+s.SuiteID, nil)
}

// suiteFAccount is the fake's account of corpid's authorization of the
// suite, whose Stats count that corp's tokens and their uses.
func suiteFAccount(s wxtest.Suite, corpid string) string { return s.SuiteID + "/" + corpid }

// suiteFBinary is the wxtoken binary serving suites on the embedded store,
// killed with SIGKILL and started again on the same data.
type suiteFBinary struct {
	t           *testing.T
	bin, config string
	data        string
	fake        *wxtest.Fake
	suites      []wxtest.Suite
	cmd         *exec.Cmd
	addr        string
}

// start runs the binary and points every suite's pushes at it.
func (b *suiteFBinary) start() {
	b.t.Helper()
	b.cmd, b.addr = startBinary(b.t, b.bin, b.config)
	for _, s := range b.suites {
		suiteFPushTo(b.fake, s, b.addr)
	}
}

// kill ends the binary with SIGKILL: nothing it had not written durably
// survives.
func (b *suiteFBinary) kill() {
	b.cmd.Process.Kill()
	b.cmd.Wait()
}

// stored reads key from the data the killed binary left.
func (b *suiteFBinary) stored(key string) ([]byte, bool) {
	b.t.Helper()
	s, err := bolt.Open(b.data)
	if err != nil {
		b.t.Fatal(err)
	}
	defer s.Close()
	ent, err := s.Get(b.t.Context(), key)
	if err != nil {
		return nil, false
	}
	return ent.Value, true
}

// record is the stored token record of credential id.
func (b *suiteFBinary) record(id string) token.Stored {
	b.t.Helper()
	v, ok := b.stored("token/" + id)
	if !ok {
		b.t.Fatalf("no record of %s stored", id)
	}
	rec, err := token.DecodeStored(v)
	if err != nil {
		b.t.Fatalf("record of %s: %v", id, err)
	}
	return rec
}

// ticket is the stored suite_ticket of suite id.
func (b *suiteFBinary) ticket(id string) string {
	b.t.Helper()
	v, ok := b.stored("ticket/" + id)
	if !ok {
		return ""
	}
	var t struct {
		Value string `json:"ticket"`
	}
	if err := json.Unmarshal(v, &t); err != nil {
		b.t.Fatalf("ticket of %s: %v", id, err)
	}
	return t.Value
}

// status is the answer of GET /v1/tokens/{id} now.
func (b *suiteFBinary) status(id string) int {
	status, _, err := askToken(b.t.Context(), http.DefaultClient, b.addr, id)
	if err != nil {
		b.t.Fatalf("GET %s: %v", id, err)
	}
	return status
}

// TestSuiteKill9 kills the binary with SIGKILL at each step of a suite's
// life and checks after each restart that nothing WeCom pushed or
// answered was lost, though WeCom sends nothing again:
//
//   - a suite_ticket answered "success" is stored: WeCom has no API to ask
//     for another, and the restart fetches the suite token with it;
//   - a create_auth answered "success" left the permanent code stored
//     (the auth code is spent), and the restart serves the corp with it;
//   - killed at random while corp tokens rotate and a business server uses
//     each one served, the store never holds a token older than one
//     served, and no served token is dead;
//   - a cancel_auth answered "success" keeps the corp revoked, never
//     refreshed;
//   - a custom app's reset_permanent_code answered "success" left the new
//     code stored (the old one stopped working when it was issued), and
//     the restart fetches with it.
func TestSuiteKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the binary for about 30 s")
	}
	const lifetime = 6 * time.Second
	// corpA installs the third-party app, corpB the custom app.
	const corpA, corpB = "ww00000000000f00a1", "ww00000000000f00b2"
	bin := buildBinary(t)
	// Overlap 3 s outlives what is left of a token when its planned
	// refresh replaces it (0.8±0.05 of 6 s): a token stored by an instance
	// killed before storing its successor still works for its life.
	fake := wxtest.New(wxtest.Config{Lifetime: lifetime, Overlap: 3 * time.Second})
	fake.AddSuite(suiteFApp)
	fake.AddSuite(suiteFCustom)
	defer fake.Close()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "wxtoken.yaml")
	if err := os.WriteFile(path, []byte(suiteFBoltYAML(filepath.Join(dir, "data"), srv.URL, suiteFApp, suiteFCustom)), 0o600); err != nil {
		t.Fatal(err)
	}
	wc := &wechat.Client{API: srv.URL, WeCom: srv.URL}
	b := &suiteFBinary{t: t, bin: bin, config: path, data: filepath.Join(dir, "data"), fake: fake,
		suites: []wxtest.Suite{suiteFApp, suiteFCustom}}
	defer func() {
		if b.cmd != nil && b.cmd.ProcessState == nil {
			b.kill()
		}
	}()
	// Each corp's credential id, {suite}/{corpid}, is also the fake's
	// account of its authorization.
	appCorp, customCorp := suiteFAccount(suiteFApp, corpA), suiteFAccount(suiteFCustom, corpB)

	// (a) The ticket. get_suite_token hangs, so the instance killed right
	// after answering the push cannot have fetched a suite token: the one
	// served after the restart was fetched with the stored ticket.
	for _, s := range b.suites {
		fake.SetFault(s.SuiteID, wxtest.Fault{Hang: true})
	}
	b.start()
	tickets := map[string]string{}
	for _, s := range b.suites {
		tk, err := fake.PushSuiteTicket(t.Context(), s.SuiteID)
		if err != nil {
			t.Fatalf("%s: ticket push not answered success: %v", s.SuiteID, err)
		}
		tickets[s.SuiteID] = tk
	}
	b.kill()
	for _, s := range b.suites {
		if got := b.ticket(s.SuiteID); got != tickets[s.SuiteID] {
			t.Fatalf("%s: after kill -9 right after the push was answered, the pushed ticket is not the one stored (stored one: %t)",
				s.SuiteID, got != "")
		}
		fake.ClearFault(s.SuiteID)
	}
	b.start()
	for _, s := range b.suites {
		getToken(t, b.addr, s.SuiteID)
		if st := fake.Stats(s.SuiteID); st.Issued != 1 || st.Pushes != 1 {
			t.Fatalf("%s: %d suite tokens issued, %d pushes; want the one token fetched after the restart with the one pushed ticket",
				s.SuiteID, st.Issued, st.Pushes)
		}
	}

	// (b) create_auth: answered only once the permanent code is stored.
	for _, c := range []struct {
		s    wxtest.Suite
		corp string
	}{{suiteFApp, corpA}, {suiteFCustom, corpB}} {
		if _, err := fake.CreateAuth(t.Context(), c.s.SuiteID, c.corp); err != nil {
			t.Fatalf("create_auth of %s to %s not answered success: %v", c.corp, c.s.SuiteID, err)
		}
	}
	b.kill()
	codes := map[string]string{}
	for _, id := range []string{appCorp, customCorp} {
		suite, corp, _ := strings.Cut(id, "/")
		want := fake.SuitePermanentCode(suite, corp)
		if rec := b.record(id); want == "" || rec.State != want {
			t.Fatalf("%s: after kill -9 right after create_auth was answered, the stored permanent code is not WeCom's", id)
		}
		codes[id] = want
	}
	exchanges := fake.Stats(suiteFApp.SuiteID).PermanentCodeCalls + fake.Stats(suiteFCustom.SuiteID).PermanentCodeCalls
	b.start()
	for _, id := range []string{appCorp, customCorp} {
		tok := getToken(t, b.addr, id).AccessToken
		if _, err := wc.WeComAPIDomainIP(t.Context(), tok); err != nil {
			t.Fatalf("%s: the token served after the restart fails upstream: %v", id, err)
		}
	}

	// (c) Killed at random while the corps' tokens rotate: each round
	// waits for both to be refreshed, then kills at a random moment of
	// their next refresh cycle (0.8±0.05 of the lifetime).
	for round := range 3 {
		issued := map[string]int{}
		for _, id := range []string{appCorp, customCorp} {
			issued[id] = fake.Stats(id).Issued
		}
		var mu sync.Mutex
		maxServed := map[string]int{}
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for _, id := range []string{appCorp, customCorp} {
			wg.Go(func() {
				for ctx.Err() == nil {
					status, tr, err := askToken(ctx, http.DefaultClient, b.addr, id)
					if err != nil || status != http.StatusOK {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if _, err := wc.WeComAPIDomainIP(ctx, tr.AccessToken); err != nil && ctx.Err() == nil {
						t.Errorf("round %d: %s: served token failed upstream: %v", round, id, err)
					}
					mu.Lock()
					maxServed[id] = max(maxServed[id], serial(tr.AccessToken))
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		for _, id := range []string{appCorp, customCorp} {
			awaitCount(t, fmt.Sprintf("round %d: %s tokens issued", round, id), func() int { return fake.Stats(id).Issued - issued[id] }, 1, 10*time.Second)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(lifetime * 85 / 100))))
		b.kill()
		stop()
		wg.Wait()
		for _, id := range []string{appCorp, customCorp} {
			rec := b.record(id)
			if rec.State != codes[id] || serial(rec.Token) < maxServed[id] {
				t.Fatalf("round %d: %s: served token #%d but the store holds #%d (permanent code kept: %t): a served token was not stored first",
					round, id, maxServed[id], serial(rec.Token), rec.State == codes[id])
			}
		}
		b.start()
		for _, id := range []string{appCorp, customCorp} {
			getToken(t, b.addr, id)
		}
	}
	for _, id := range []string{appCorp, customCorp} {
		suite, corp, _ := strings.Cut(id, "/")
		st := fake.Stats(id)
		if st.DeadUses != 0 || st.GoodUses == 0 {
			t.Errorf("%s: %d good uses, %d dead; want no dead use", id, st.GoodUses, st.DeadUses)
		}
		if got := fake.SuitePermanentCode(suite, corp); got != codes[id] {
			t.Errorf("%s: the permanent code changed across the kills: the corp was authorized again", id)
		}
	}
	if got := fake.Stats(suiteFApp.SuiteID).PermanentCodeCalls + fake.Stats(suiteFCustom.SuiteID).PermanentCodeCalls; got != exchanges {
		t.Errorf("%d get_permanent_code calls after the create_auth pushes, want 0: the stored permanent codes must be used", got-exchanges)
	}

	// (d) cancel_auth: the corp stays revoked across the restart.
	if err := fake.CancelAuth(t.Context(), suiteFApp.SuiteID, corpA); err != nil {
		t.Fatalf("cancel_auth not answered success: %v", err)
	}
	cancelled := time.Now()
	b.kill()
	if rec := b.record(appCorp); !rec.Revoked || rec.State != "" || rec.Token != "" {
		t.Fatalf("after kill -9 right after cancel_auth was answered, %s is stored revoked=%t with a permanent code or token kept: %t",
			appCorp, rec.Revoked, rec.State != "" || rec.Token != "")
	}
	revokedCalls := fake.Stats(appCorp).CorpTokenCalls
	b.start()
	if got := b.status(appCorp); got != http.StatusGone {
		t.Fatalf("GET %s after the restart: %d, want 410: the withdrawn authorization is served again", appCorp, got)
	}

	// (e) reset_permanent_code of the custom app.
	oldCode := codes[customCorp]
	if _, err := fake.ResetPermanentCode(t.Context(), suiteFCustom.SuiteID, corpB); err != nil {
		t.Fatalf("reset_permanent_code not answered success: %v", err)
	}
	b.kill()
	newCode := fake.SuitePermanentCode(suiteFCustom.SuiteID, corpB)
	if rec := b.record(customCorp); newCode == oldCode || rec.State != newCode {
		t.Fatalf("after kill -9 right after reset_permanent_code was answered, %s holds the new permanent code: %t (reset: %t)",
			customCorp, rec.State == newCode, newCode != oldCode)
	}
	before := fake.Stats(customCorp)
	b.start()
	// The old code answers 40001 at gettoken and issues nothing: every
	// call after the restart issuing a token means each used the new one.
	awaitCount(t, customCorp+" tokens issued after the restart", func() int { return fake.Stats(customCorp).Issued - before.Issued }, 1, 15*time.Second)
	if st := fake.Stats(customCorp); st.WeComCalls-before.WeComCalls != st.Issued-before.Issued {
		t.Errorf("%s: %d gettoken calls after the restart issued %d tokens: the restart tried the replaced permanent code",
			customCorp, st.WeComCalls-before.WeComCalls, st.Issued-before.Issued)
	}
	tok := getToken(t, b.addr, customCorp).AccessToken
	if _, err := wc.WeComAPIDomainIP(t.Context(), tok); err != nil {
		t.Errorf("%s: the token served after the reset and a restart fails upstream: %v", customCorp, err)
	}

	// The cancelled corp: nothing to poll for, so the test waits until any
	// token it held has expired, by when a live corp would have been
	// refreshed at least once.
	time.Sleep(time.Until(cancelled.Add(lifetime + time.Second)))
	if got := fake.Stats(appCorp).CorpTokenCalls; got != revokedCalls {
		t.Errorf("%s: refreshed %d times after cancel_auth and two restarts, want never", appCorp, got-revokedCalls)
	}
	if got := b.status(appCorp); got != http.StatusGone {
		t.Errorf("GET %s at the end: %d, want 410", appCorp, got)
	}
}
