package component_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

var (
	suite = wxtest.Suite{SuiteID: "ww5e17e00000000001", Secret: "suite-secret", Token: "suite-token",
		EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
	customTemplate = wxtest.Suite{SuiteID: "dk5e17e00000000002", Secret: "dk-secret", Token: "dk-token",
		EncodingAESKey: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"}
)

const corp1, corp2 = "ww00000000000000c1", "ww00000000000000c2"

// startSuite is startPlatform for the WeCom suite s, with its command
// callback at /callback/suite/{id} as the kind declares it (verified with
// a GET, every push encrypted for the suite id).
func startSuite(t *testing.T, s wxtest.Suite, cfg component.Config, st store.Store, fake *wxtest.Fake,
	wrap func(http.RoundTripper) http.RoundTripper, opts ...func(*token.Config)) *platform {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pl := &platform{fake: fake, store: st}
	hc := fake.Client()
	if wrap != nil {
		hc.Transport = wrap(hc.Transport)
	}
	pl.up = &wechat.Client{HTTP: hc, API: "http://wechat", WeCom: "http://qyapi"}
	cfg.AppID, cfg.Secret = s.SuiteID, s.Secret
	if cfg.ID == "" {
		cfg.ID = "suite"
	}
	pl.p = component.NewSuite(cfg, pl.up, st, quiet)
	m := pl.manage(t, quiet, opts...)
	cr, err := callback.NewCrypter(s.Token, s.EncodingAESKey, s.SuiteID)
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Tokens: m, Logger: quiet,
		CallbackModes: []server.CallbackMode{{Kind: component.KindSuite, Verify: true, Encrypted: true}},
		Callbacks:     []server.Callback{{Kind: component.KindSuite, ID: cfg.ID, Token: s.Token, Crypter: cr, Handler: pl.p}}})
	if err != nil {
		t.Fatal(err)
	}
	fake.SetPushTarget(s.SuiteID, "http://wxtoken/callback/suite/"+cfg.ID, wxtest.HandlerClient(api))
	return pl
}

func newSuiteFake(fc wxtest.Config, suites ...wxtest.Suite) *wxtest.Fake {
	fake := wxtest.New(fc)
	for _, s := range suites {
		fake.AddSuite(s)
	}
	return fake
}

// useSuite reports whether the suite's token is served.
func (pl *platform) useSuite(id string) bool {
	_, err := pl.tokens.Token(id)
	return err == nil
}

// useCorp calls WeCom with id's current token and reports whether one was
// handed out; a dead token handed out fails the test.
func (pl *platform) useCorp(t *testing.T, id string) bool {
	s, err := pl.tokens.Token(id)
	if err != nil {
		return false
	}
	if _, err := pl.up.WeComAPIDomainIP(t.Context(), s.Token); err != nil {
		t.Errorf("%s: served token failed upstream: %v", id, err)
	}
	return true
}

// TestSuiteLifecycle runs a suite's whole flow against the fake: no
// ticket at first start, and no call to WeCom (no API asks for a push);
// ticket push → suite token → create_auth → the permanent code stored
// before "success" → the corp's token served and refreshed for six
// hours → change_auth changes nothing → cancel_auth → no longer served,
// never refreshed again, nothing of it stored.
func TestSuiteLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, nil)
		time.Sleep(5 * time.Minute)
		if st := fake.Stats(suite.SuiteID); st.SuiteTokenCalls != 0 {
			t.Fatalf("get_suite_token called %d times without a ticket", st.SuiteTokenCalls)
		}
		if gap, _ := pl.p.TicketGap(t.Context()); !strings.Contains(gap, "no suite_ticket received yet") {
			t.Fatalf("ticket gap = %q, want it reported", gap)
		}
		if _, err := fake.PushSuiteTicket(t.Context(), suite.SuiteID); err != nil {
			t.Fatalf("ticket push: %v", err)
		}
		time.Sleep(time.Second)
		if !pl.useSuite("suite") {
			t.Fatal("no suite token after the ticket push")
		}
		if gap, _ := pl.p.TicketGap(t.Context()); gap != "" {
			t.Fatalf("ticket gap = %q after a push", gap)
		}

		if _, err := fake.CreateAuth(t.Context(), suite.SuiteID, corp1); err != nil {
			t.Fatalf("create_auth: %v", err)
		}
		time.Sleep(time.Second) // v2 answers no token: the first is fetched now
		// "success" was answered (CreateAuth returned no error) only
		// once the permanent code was stored.
		id := component.AuthorizerID("suite", corp1)
		if rec := storedRecord(t, pl.store, id); rec.State == "" || rec.State != fake.SuitePermanentCode(suite.SuiteID, corp1) {
			t.Fatal("the stored permanent code is not WeCom's")
		}
		if !pl.useCorp(t, id) {
			t.Fatal("corp token not served after create_auth")
		}
		for range 6 * 60 {
			time.Sleep(time.Minute)
			if !pl.useCorp(t, id) || !pl.useSuite("suite") {
				t.Fatalf("a token was not served at %s", time.Now().Format(time.TimeOnly))
			}
			if time.Now().Minute()%10 == 0 {
				fake.PushSuiteTicket(t.Context(), suite.SuiteID)
			}
		}
		st := fake.Stats(suite.SuiteID + "/" + corp1)
		if st.DeadUses != 0 || st.CorpTokenCalls < 6 {
			t.Fatalf("corp stats %+v: want ≥ 6 refreshes and no dead use", st)
		}
		if err := fake.ChangeAuth(t.Context(), suite.SuiteID, corp1); err != nil {
			t.Fatalf("change_auth: %v", err)
		}
		if !pl.useCorp(t, id) {
			t.Fatal("corp token not served after change_auth")
		}

		if err := fake.CancelAuth(t.Context(), suite.SuiteID, corp1); err != nil {
			t.Fatalf("cancel_auth: %v", err)
		}
		if _, err := pl.tokens.Token(id); !errors.Is(err, token.ErrRevoked) {
			t.Fatalf("Token after cancel_auth = %v, want ErrRevoked", err)
		}
		calls := fake.Stats(suite.SuiteID + "/" + corp1).CorpTokenCalls
		time.Sleep(3 * time.Hour)
		if got := fake.Stats(suite.SuiteID + "/" + corp1).CorpTokenCalls; got != calls {
			t.Fatalf("a cancelled corp was refreshed %d times", got-calls)
		}
		if rec := storedRecord(t, pl.store, id); rec.State != "" || rec.Token != "" || !rec.Revoked {
			t.Fatal("a cancelled corp's permanent code or token is still stored")
		}
	})
}

// TestSuiteTicketRefusedWaitsForPush: a ticket WeCom refuses (40085) is
// not used again; the suite calls WeCom next when a new ticket arrives,
// however long that takes.
func TestSuiteTicketRefusedWaitsForPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, nil)
		// A push WeCom never made, sealed with the suite's keys: the
		// server takes it as the newest ticket, and WeCom refuses it.
		forged := fmt.Sprintf("<xml><SuiteId><![CDATA[%s]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>"+
			"<TimeStamp>%d</TimeStamp><SuiteTicket><![CDATA[never-pushed]]></SuiteTicket></xml>", suite.SuiteID, time.Now().Unix())
		if status, body, err := fake.PushSuiteRaw(t.Context(), suite.SuiteID, []byte(forged), nil); err != nil || status != 200 || body != "success" {
			t.Fatalf("push = %d %q %v", status, body, err)
		}
		time.Sleep(time.Minute)
		if got := fake.Stats(suite.SuiteID).SuiteTokenCalls; got != 1 {
			t.Fatalf("get_suite_token calls = %d, want the one refused", got)
		}
		if snap, _ := pl.tokens.Snapshot("suite"); snap.Cause == nil || snap.Cause.Class != "ticket" ||
			snap.Cause.ErrCode != wechat.CodeBadSuiteTicket && !strings.Contains(snap.Cause.Message, "refused") {
			t.Fatalf("cause = %+v, want the refused ticket shown", snap.Cause)
		}
		time.Sleep(2 * time.Hour)
		if got := fake.Stats(suite.SuiteID).SuiteTokenCalls; got != 1 {
			t.Fatalf("get_suite_token calls = %d after 2 h with the refused ticket, want 1: it loops", got)
		}
		if gap, _ := pl.p.TicketGap(t.Context()); gap == "" {
			t.Fatal("a refused ticket is not reported")
		}
		fake.PushSuiteTicket(t.Context(), suite.SuiteID)
		time.Sleep(time.Second)
		if !pl.useSuite("suite") {
			t.Fatal("no suite token after a good ticket arrived")
		}
		if got := fake.Stats(suite.SuiteID).SuiteTokenCalls; got != 2 {
			t.Fatalf("get_suite_token calls = %d, want 2", got)
		}
	})
}

// TestSuitePushForAnotherSuite: a push sealed with the suite's keys that
// names another suite in SuiteId is refused with 400, naming both suites
// and not asking for a delivery that would be refused again, and its
// ticket is not stored.
func TestSuitePushForAnotherSuite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, nil)
		other := fmt.Sprintf("<xml><SuiteId><![CDATA[%s]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>"+
			"<TimeStamp>%d</TimeStamp><SuiteTicket><![CDATA[other-suite's]]></SuiteTicket></xml>", customTemplate.SuiteID, time.Now().Unix())
		status, body, err := fake.PushSuiteRaw(t.Context(), suite.SuiteID, []byte(other), nil)
		if err != nil || status != http.StatusBadRequest || !strings.Contains(body, customTemplate.SuiteID) ||
			!strings.Contains(body, suite.SuiteID) || strings.Contains(body, "deliver again") {
			t.Fatalf("push naming another suite = %d %s (%v); want 400 naming both suites", status, body, err)
		}
		if gap, _ := pl.p.TicketGap(t.Context()); !strings.Contains(gap, "no suite_ticket received yet") {
			t.Fatalf("ticket gap = %q: the other suite's ticket was stored", gap)
		}
	})
}

// TestSuiteUnknownAuthCode: a create_auth whose code WeCom does not know
// (40078) is refused, saying so, and adds no corp.
func TestSuiteUnknownAuthCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, nil)
		fake.PushSuiteTicket(t.Context(), suite.SuiteID)
		time.Sleep(time.Second)
		push := fmt.Sprintf("<xml><SuiteId><![CDATA[%s]]></SuiteId><AuthCode><![CDATA[never-issued]]></AuthCode>"+
			"<InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>%d</TimeStamp></xml>", suite.SuiteID, time.Now().Unix())
		status, body, err := fake.PushSuiteRaw(t.Context(), suite.SuiteID, []byte(push), nil)
		if err != nil || status != http.StatusBadGateway || !strings.Contains(body, "exchange the authorization code: wechat: errcode 40078") {
			t.Fatalf("create_auth with an unknown code = %d %s (%v); want 502 saying the exchange got 40078", status, body, err)
		}
		if page, _ := pl.p.Page(pl.tokens.IDs(), "", 10); len(page) != 0 {
			t.Fatalf("corps after the refused create_auth: %v", page)
		}
	})
}

// TestSuiteOlderTicketIgnored: of two pushes, the one WeCom created later
// is kept, whatever order they arrive in.
func TestSuiteOlderTicketIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, nil)
		fake.PushSuiteTicket(t.Context(), suite.SuiteID)
		time.Sleep(time.Second)
		old := fmt.Sprintf("<xml><SuiteId>%s</SuiteId><InfoType>suite_ticket</InfoType>"+
			"<TimeStamp>%d</TimeStamp><SuiteTicket>older</SuiteTicket></xml>", suite.SuiteID, time.Now().Add(-5*time.Minute).Unix())
		if status, body, _ := fake.PushSuiteRaw(t.Context(), suite.SuiteID, []byte(old), nil); status != 200 || body != "success" {
			t.Fatalf("older push = %d %q, want success (and ignored)", status, body)
		}
		time.Sleep(time.Minute) // past the interval between forced refreshes
		if _, err := pl.tokens.Refresh(t.Context(), "suite"); err != nil {
			t.Fatalf("refresh with the newest ticket: %v", err)
		}
	})
}

// TestCustomApp: a custom-developed app template (代开发, "dk…"): its
// corps' tokens come from gettoken with the permanent code as the app
// secret, so they need no suite token; reset_permanent_code replaces the
// code durably, and the old one stops working.
func TestCustomApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, customTemplate)
		defer fake.Close()
		pl := startSuite(t, customTemplate, component.Config{ID: "dk"}, memory.New(), fake, nil)
		fake.PushSuiteTicket(t.Context(), customTemplate.SuiteID)
		time.Sleep(time.Second)
		if _, err := fake.CreateAuth(t.Context(), customTemplate.SuiteID, corp1); err != nil {
			t.Fatalf("create_auth: %v", err)
		}
		time.Sleep(time.Second)
		id := component.AuthorizerID("dk", corp1)
		acct := customTemplate.SuiteID + "/" + corp1
		if !pl.useCorp(t, id) {
			t.Fatal("custom app's corp token not served")
		}
		// No suite_ticket for hours: the suite token cannot be
		// fetched, and the corp's token does not need it.
		for range 4 * 60 {
			time.Sleep(time.Minute)
			if !pl.useCorp(t, id) {
				t.Fatalf("corp token not served at %s without a suite token", time.Now().Format(time.TimeOnly))
			}
		}
		if st := fake.Stats(acct); st.WeComCalls < 4 || st.CorpTokenCalls != 0 || st.DeadUses != 0 {
			t.Fatalf("custom app corp stats %+v: want ≥ 4 gettoken refreshes, no get_corp_token, no dead use", st)
		}

		fake.PushSuiteTicket(t.Context(), customTemplate.SuiteID)
		time.Sleep(time.Second)
		oldCode := fake.SuitePermanentCode(customTemplate.SuiteID, corp1)
		if _, err := fake.ResetPermanentCode(t.Context(), customTemplate.SuiteID, corp1); err != nil {
			t.Fatalf("reset_permanent_code: %v", err)
		}
		newCode := fake.SuitePermanentCode(customTemplate.SuiteID, corp1)
		if newCode == oldCode || storedRecord(t, pl.store, id).State != newCode {
			t.Fatal("the reset permanent code is not the one stored")
		}
		// The token served before the reset is still good, and still
		// served: the reset answered no token of its own.
		if !pl.useCorp(t, id) {
			t.Fatal("corp token not served right after the reset")
		}
		time.Sleep(time.Minute) // past the interval between forced refreshes
		if _, err := pl.tokens.Refresh(t.Context(), id); err != nil {
			t.Fatalf("refresh with the new permanent code: %v", err)
		}
		if !pl.useCorp(t, id) {
			t.Fatal("corp token not served after the reset")
		}
	})
}

// TestSuiteImport: corps carried over with their permanent codes are
// served at once, listed a page at a time, and an import in the
// platform's shape (authorizer_appid) is refused before anything is
// stored.
func TestSuiteImport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, nil)
		fake.PushSuiteTicket(t.Context(), suite.SuiteID)
		time.Sleep(time.Second)
		var list []component.Import
		for _, c := range []string{corp1, corp2} {
			code, err := fake.GrantSuite(suite.SuiteID, c)
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, component.Import{CorpID: c, PermanentCode: code})
		}
		if _, err := pl.p.Import(t.Context(), []component.Import{{AppID: corp1, RefreshToken: "x"}}, false); !errors.Is(err, component.ErrInvalidImport) {
			t.Fatalf("import in the platform's shape: %v, want ErrInvalidImport", err)
		}
		if _, err := pl.p.Import(t.Context(), []component.Import{{CorpID: corp1}}, false); !errors.Is(err, component.ErrInvalidImport) {
			t.Fatalf("import without a permanent code: %v, want ErrInvalidImport", err)
		}
		done, err := pl.p.Import(t.Context(), list, false)
		if err != nil || len(done) != 2 || done[0].CorpID != corp1 || done[0].Result != component.Imported {
			t.Fatalf("import = %+v, %v", done, err)
		}
		time.Sleep(time.Second)
		for _, c := range []string{corp1, corp2} {
			if !pl.useCorp(t, component.AuthorizerID("suite", c)) {
				t.Fatalf("imported corp %s not served", c)
			}
		}
		page, next := pl.p.Page(pl.tokens.IDs(), "", 1)
		if len(page) != 1 || page[0].ID != "suite/"+corp1 || next != corp1 {
			t.Fatalf("first page %v, next %q", page, next)
		}
		if page, next = pl.p.Page(pl.tokens.IDs(), next, 1); len(page) != 1 || page[0].ID != "suite/"+corp2 || next != "" {
			t.Fatalf("second page %v, next %q", page, next)
		}
	})
}

// TestTenThousandCorps keeps 10,000 corps of one suite fresh over six
// hours with at most Concurrency upstream calls at once.
func TestTenThousandCorps(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 corps")
	}
	synctest.Test(t, func(t *testing.T) {
		const n, limit = 10_000, 8
		var inflight, peak atomic.Int64
		fake := newSuiteFake(wxtest.Config{Lifetime: 2 * time.Hour, DailyLimit: 1 << 30}, suite)
		defer fake.Close()
		count := func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, &inflight, &peak} }
		pl := startSuite(t, suite, component.Config{}, memory.New(), fake, count, func(c *token.Config) { c.Concurrency = limit })
		fake.PushSuiteTicket(t.Context(), suite.SuiteID)
		time.Sleep(time.Second)
		corp := func(i int) string { return fmt.Sprintf("ww%016x", i) }
		for i := range n {
			if _, err := fake.CreateAuth(t.Context(), suite.SuiteID, corp(i)); err != nil {
				t.Fatal(err)
			}
		}
		// Each create_auth exchanged its code in the push, beside the
		// bounded refreshes; from here on only refreshes call WeCom.
		time.Sleep(time.Minute)
		peak.Store(0)
		fake.SetFault(suite.SuiteID, wxtest.Fault{Delay: 400 * time.Millisecond})
		stale := 0
		for tick := range 36 { // six hours, a ticket every ten minutes
			time.Sleep(10 * time.Minute)
			fake.PushSuiteTicket(t.Context(), suite.SuiteID)
			if tick%6 != 5 {
				continue
			}
			for i := range n {
				if _, err := pl.tokens.Token(component.AuthorizerID("suite", corp(i))); err != nil {
					if stale++; stale < 5 {
						t.Errorf("hour %d: %s: %v", tick/6+1, corp(i), err)
					}
				}
			}
		}
		calls := 0
		for i := range n {
			calls += fake.Stats(suite.SuiteID + "/" + corp(i)).CorpTokenCalls
		}
		if stale > 0 {
			t.Fatalf("%d corp-hours without a valid token", stale)
		}
		if calls < 3*n || calls > 4*n {
			t.Fatalf("%d corp refreshes for %d corps in 6 h, want 3 to 4 each", calls, n)
		}
		if p := peak.Load(); p != limit {
			t.Fatalf("peak concurrent upstream calls = %d, want the bound %d reached and never passed", p, limit)
		}
		t.Logf("%d corps, %d refreshes in 6 h, peak %d concurrent upstream calls (bound %d)", n, calls, peak.Load(), limit)
	})
}

// TestSuitePermanentCodeV1: configured for the v1 get_permanent_code, a
// suite serves the corp's first token from the exchange's answer, with
// no get_corp_token call, and refreshes it with get_corp_token after.
func TestSuitePermanentCodeV1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		pl := startSuite(t, suite, component.Config{PermanentCodeV1: true}, memory.New(), fake, nil)
		fake.PushSuiteTicket(t.Context(), suite.SuiteID)
		time.Sleep(time.Second)
		if _, err := fake.CreateAuth(t.Context(), suite.SuiteID, corp1); err != nil {
			t.Fatalf("create_auth: %v", err)
		}
		id := component.AuthorizerID("suite", corp1)
		// Served at once: the token came with the permanent code.
		if !pl.useCorp(t, id) {
			t.Fatal("corp token not served right after create_auth")
		}
		acct := suite.SuiteID + "/" + corp1
		if st := fake.Stats(acct); st.CorpTokenCalls != 0 {
			t.Fatalf("get_corp_token calls = %d, want 0: v1 answers the first token", st.CorpTokenCalls)
		}
		time.Sleep(2 * time.Hour)
		fake.PushSuiteTicket(t.Context(), suite.SuiteID) // the suite token's own refresh needs a fresh ticket
		time.Sleep(time.Hour)
		if !pl.useCorp(t, id) {
			t.Fatal("corp token not served after its first lifetime")
		}
		if st := fake.Stats(acct); st.CorpTokenCalls == 0 || st.DeadUses != 0 {
			t.Fatalf("corp stats %+v: want refreshes by get_corp_token and no dead use", st)
		}
	})
}
