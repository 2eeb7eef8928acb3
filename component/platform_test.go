package component_test

import (
	"context"
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

var comp = wxtest.Component{AppID: "wxcomp00000001", Secret: "comp-secret", Token: "comp-token",
	EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}

// platform is a third-party platform served by a real API, with WeChat's
// pushes delivered in process so that it runs under testing/synctest.
type platform struct {
	fake   *wxtest.Fake
	up     *wechat.Client
	store  store.Store
	tokens *token.Manager
	p      *component.Platform
}

func startPlatform(t *testing.T, fc wxtest.Config, st store.Store, fake *wxtest.Fake, opts ...func(*token.Config)) *platform {
	return startPlatformWith(t, fc, st, fake, nil, opts...)
}

// startPlatformWith is startPlatform with the upstream transport wrapped.
func startPlatformWith(t *testing.T, fc wxtest.Config, st store.Store, fake *wxtest.Fake,
	wrap func(http.RoundTripper) http.RoundTripper, opts ...func(*token.Config)) *platform {
	t.Helper()
	return startPlatformConfig(t, component.Config{ID: "plat", AppID: comp.AppID, Secret: comp.Secret}, fc, st, fake, wrap, opts...)
}

// startPlatformConfig is startPlatformWith for the platform cfg.
func startPlatformConfig(t *testing.T, cfg component.Config, fc wxtest.Config, st store.Store, fake *wxtest.Fake,
	wrap func(http.RoundTripper) http.RoundTripper, opts ...func(*token.Config)) *platform {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if fake == nil {
		fake = wxtest.New(fc)
		fake.AddComponent(comp)
		t.Cleanup(fake.Close)
	}
	pl := &platform{fake: fake, store: st}
	hc := fake.Client()
	if wrap != nil {
		hc.Transport = wrap(hc.Transport)
	}
	pl.up = &wechat.Client{HTTP: hc, API: "http://wechat"}
	pl.p = component.New(cfg, pl.up, st, quiet)
	m := pl.manage(t, quiet, opts...)
	cr, err := callback.NewCrypter(comp.Token, comp.EncodingAESKey, comp.AppID)
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(server.Config{Tokens: m, Logger: quiet, CallbackModes: []server.CallbackMode{{Kind: component.KindComponent, Encrypted: true}}, Callbacks: []server.Callback{
		{Kind: "component", ID: "plat", Token: comp.Token, Crypter: cr, Handler: pl.p}}})
	if err != nil {
		t.Fatal(err)
	}
	fake.SetPushTarget(comp.AppID, "http://wxtoken/callback/component/plat", wxtest.HandlerClient(api))
	return pl
}

// manage starts a token manager on pl's store with the platform's
// credential, and the platform on it.
func (pl *platform) manage(t *testing.T, quiet *slog.Logger, opts ...func(*token.Config)) *token.Manager {
	t.Helper()
	tc := token.Config{Store: pl.store, Logger: quiet}
	for _, o := range opts {
		o(&tc)
	}
	m, err := token.New(tc, []token.Credential{pl.p.Credential()})
	if err != nil {
		t.Fatal(err)
	}
	pl.tokens = m
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := pl.p.Start(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// use calls WeChat with id's current token and reports whether one was
// handed out; a dead token handed out fails the test.
func (pl *platform) use(t *testing.T, id string) bool {
	s, err := pl.tokens.Token(id)
	if err != nil {
		return false
	}
	if _, err := pl.up.CallbackIP(t.Context(), s.Token); err != nil {
		t.Errorf("%s: served token failed upstream: %v", id, err)
	}
	return true
}

// TestPlatformLifecycle runs the whole flow against the fake: no ticket at
// first start, so one is asked for; ticket push → component token →
// authorization event → authorizer token served → refreshes rotating the
// refresh token → unauthorized → no longer served.
func TestPlatformLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := startPlatform(t, wxtest.Config{Lifetime: time.Hour}, memory.New(), nil)
		pl.fake.SetRefreshTokenRotation(comp.AppID, 1)
		time.Sleep(time.Second) // start_push_ticket, then the push
		if st := pl.fake.Stats(comp.AppID); st.StartPushCalls != 1 || st.Pushes != 1 {
			t.Fatalf("stats %+v: want one api_start_push_ticket and one push", st)
		}
		if !pl.use(t, "plat") {
			t.Fatal("no component token after the ticket push")
		}

		if _, err := pl.fake.Authorize(t.Context(), comp.AppID, "wxauth01"); err != nil {
			t.Fatalf("authorize: %v", err)
		}
		if !pl.use(t, "wxauth01") {
			t.Fatal("authorizer token not served after the authorization event")
		}
		for range 6 * 60 { // six hours of use, six refreshes
			time.Sleep(time.Minute)
			if !pl.use(t, "wxauth01") || !pl.use(t, "plat") {
				t.Fatalf("a token was not served at %s", time.Now().Format(time.TimeOnly))
			}
			pl.fake.PushTicket(t.Context(), comp.AppID) // WeChat pushes every ten minutes; once a minute here is plenty
		}
		st := pl.fake.Stats("wxauth01")
		if st.DeadUses != 0 || st.AuthorizerTokenCalls < 6 {
			t.Fatalf("authorizer stats %+v: want ≥ 6 refreshes and no dead use", st)
		}
		rec := storedRecord(t, pl.store, "plat/wxauth01")
		if rec.State != pl.fake.AuthorizerRefreshToken(comp.AppID, "wxauth01") {
			t.Fatal("stored refresh token is not WeChat's newest after rotations")
		}

		if err := pl.fake.Unauthorize(t.Context(), comp.AppID, "wxauth01"); err != nil {
			t.Fatalf("unauthorize: %v", err)
		}
		if _, err := pl.tokens.Token("wxauth01"); !errors.Is(err, token.ErrRevoked) {
			t.Fatalf("Token after unauthorized = %v, want ErrRevoked", err)
		}
		calls := pl.fake.Stats("wxauth01").AuthorizerTokenCalls
		time.Sleep(3 * time.Hour)
		if got := pl.fake.Stats("wxauth01").AuthorizerTokenCalls; got != calls {
			t.Fatalf("a revoked authorizer was refreshed %d times", got-calls)
		}
		if rec := storedRecord(t, pl.store, "plat/wxauth01"); rec.State != "" || rec.Token != "" || !rec.Revoked {
			t.Fatal("a revoked authorizer's tokens are still stored")
		}
	})
}

type record struct {
	Token   string `json:"token"`
	State   string `json:"state"`
	Revoked bool   `json:"revoked"`
}

func storedRecord(t *testing.T, s store.Store, id string) record {
	t.Helper()
	e, err := s.Get(context.Background(), "token/"+id)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := token.DecodeStored(e.Value)
	if err != nil {
		t.Fatal(err)
	}
	return record{Token: s2.Token, State: s2.State, Revoked: s2.Revoked}
}

// TestRestartUsesStoredTicket: a new instance on the same store fetches
// the component token with the stored ticket at once, without asking
// WeChat for a push, and brings back the authorizers with their refresh
// tokens.
func TestRestartUsesStoredTicket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memory.New()
		fake := wxtest.New(wxtest.Config{Lifetime: 20 * time.Minute})
		fake.AddComponent(comp)
		defer fake.Close()
		ctx, stop := context.WithCancel(t.Context())
		first := startPlatform(t, wxtest.Config{}, st, fake)
		time.Sleep(time.Second)
		fake.Authorize(ctx, comp.AppID, "wxauth01")
		if !first.use(t, "wxauth01") {
			t.Fatal("no authorizer token")
		}
		first.tokens.Close()
		stop()
		// Down long enough for both tokens to expire, not so long that
		// missed pushes would make it ask for a ticket anyway.
		time.Sleep(25 * time.Minute)

		before := fake.Stats(comp.AppID)
		second := startPlatform(t, wxtest.Config{}, st, fake)
		time.Sleep(5 * time.Second) // the authorizer retries once the component token is back
		if !second.use(t, "plat") || !second.use(t, "wxauth01") {
			t.Fatal("tokens not served after restart without a new push")
		}
		after := fake.Stats(comp.AppID)
		if after.StartPushCalls != before.StartPushCalls || after.Pushes != before.Pushes {
			t.Fatalf("restart asked for a ticket: %+v → %+v", before, after)
		}
	})
}

// TestOneAccountOnTwoPlatforms: an account authorized to two platforms is
// held by each under its own namespace, "{platform}/{appid}", with its
// own refresh token; one platform's import touches nothing of the other's,
// and the bare appid, which named the authorizer before namespaces, is
// ambiguous.
func TestOneAccountOnTwoPlatforms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memory.New()
		pl := startPlatform(t, wxtest.Config{}, st, nil)
		time.Sleep(time.Second)
		pl.fake.Authorize(t.Context(), comp.AppID, "wxauth01")
		if !pl.use(t, "wxauth01") {
			t.Fatal("no authorizer token by its bare appid while one platform holds it")
		}
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		other := component.New(component.Config{ID: "other", AppID: "wxother", Secret: "s"}, pl.up, st, quiet)
		if err := other.Start(t.Context(), pl.tokens); err != nil {
			t.Fatal(err)
		}
		done, err := other.Import(t.Context(), []component.Import{{AppID: "wxauth01", RefreshToken: "others"}}, true)
		if err != nil || len(done) != 1 || done[0].Result != component.Imported {
			t.Fatalf("second platform importing the account: %v, %v; want imported", done, err)
		}
		if s, err := pl.tokens.Snapshot("other/wxauth01"); err != nil || s.Owner != "other" {
			t.Fatalf("other/wxauth01 = %+v, %v; want held by other", s, err)
		}
		if s, err := pl.tokens.Token("plat/wxauth01"); err != nil || s.Owner != "plat" {
			t.Fatalf("plat/wxauth01 = %+v, %v; want served, held by plat", s, err)
		}
		if rec := storedRecord(t, st, "plat/wxauth01"); rec.State == "others" {
			t.Fatal("the other platform's import overwrote this platform's refresh token")
		}
		var amb *token.AmbiguousError
		if _, err := pl.tokens.Token("wxauth01"); !errors.As(err, &amb) || fmt.Sprint(amb.Candidates) != "[other/wxauth01 plat/wxauth01]" {
			t.Fatalf("bare appid held by two platforms: %v, want ambiguous between other/wxauth01 and plat/wxauth01", err)
		}
	})
}

// TestTenThousandAuthorizers keeps 10,000 authorizers fresh over three
// token lifetimes with at most Concurrency upstream calls at once.
func TestTenThousandAuthorizers(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 authorizers")
	}
	synctest.Test(t, func(t *testing.T) {
		const n, limit = 10_000, 8
		var inflight, peak atomic.Int64
		fake := wxtest.New(wxtest.Config{Lifetime: 2 * time.Hour, DailyLimit: 1 << 30})
		fake.AddComponent(comp)
		defer fake.Close()
		count := func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, &inflight, &peak} }
		pl := startPlatformWith(t, wxtest.Config{}, memory.New(), fake, count, func(c *token.Config) { c.Concurrency = limit })
		time.Sleep(time.Second)
		for i := range n {
			if _, err := fake.Authorize(t.Context(), comp.AppID, fmt.Sprintf("wxa%05d", i)); err != nil {
				t.Fatal(err)
			}
		}
		// Slow answers make the refreshes of the 720 s window overlap well
		// past the bound, so the bound is what keeps them in line.
		fake.SetFault(comp.AppID, wxtest.Fault{Delay: 400 * time.Millisecond})
		stale := 0
		for hour := range 6 {
			time.Sleep(time.Hour)
			fake.PushTicket(t.Context(), comp.AppID)
			for i := range n {
				id := fmt.Sprintf("wxa%05d", i)
				if _, err := pl.tokens.Token(id); err != nil {
					stale++
					if stale < 5 {
						t.Errorf("hour %d: %s: %v", hour+1, id, err)
					}
				}
			}
		}
		calls := 0
		for i := range n {
			calls += fake.Stats(fmt.Sprintf("wxa%05d", i)).AuthorizerTokenCalls
		}
		if stale > 0 {
			t.Fatalf("%d authorizer-hours without a valid token", stale)
		}
		// Six hours of 2 h tokens refreshed at 0.8: three to four each.
		if calls < 3*n || calls > 4*n {
			t.Fatalf("%d authorizer refreshes for %d authorizers in 6 h, want 3 to 4 each", calls, n)
		}
		if p := peak.Load(); p != limit {
			t.Fatalf("peak concurrent upstream calls = %d, want the bound %d reached and never passed", p, limit)
		}
		t.Logf("%d authorizers, %d refreshes in 6 h, peak %d concurrent upstream calls (bound %d)", n, calls, peak.Load(), limit)
	})
}

// countingTransport records the peak number of calls in flight.
type countingTransport struct {
	rt             http.RoundTripper
	inflight, peak *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.inflight.Add(1)
	defer c.inflight.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return c.rt.RoundTrip(r)
}

// TestMissedPushesAskForTicket: a ticket still usable but not renewed for
// several push periods (the event URL may be broken) makes the platform
// ask WeChat for a push when it next refreshes.
func TestMissedPushesAskForTicket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := startPlatform(t, wxtest.Config{Lifetime: time.Hour}, memory.New(), nil)
		time.Sleep(time.Second)
		asked := pl.fake.Stats(comp.AppID).StartPushCalls
		pl.fake.SetPushTarget(comp.AppID, "http://nowhere.invalid/", wxtest.HandlerClient(http.NotFoundHandler()))
		time.Sleep(2 * time.Hour) // two component refreshes without a new ticket
		if got := pl.fake.Stats(comp.AppID).StartPushCalls; got <= asked {
			t.Fatalf("api_start_push_ticket calls = %d after 2 h without a ticket, want more than %d", got, asked)
		}
		if !pl.use(t, "plat") {
			t.Fatal("the component token stopped being served while its ticket is still usable")
		}
	})
}

// TestImportRefusesBadAppIDs: an imported appid becomes a credential id,
// a store key and a JSON string written unescaped, so only appid-shaped
// values are taken, and a bad list imports nothing.
func TestImportRefusesBadAppIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := startPlatform(t, wxtest.Config{}, memory.New(), nil)
		for _, id := range []string{`x","access_token":"y`, "plat/*", "", string(make([]byte, 65)), "has space"} {
			done, err := pl.p.Import(t.Context(), []component.Import{{AppID: "wxgood", RefreshToken: "r"}, {AppID: id, RefreshToken: "r"}}, false)
			if !errors.Is(err, component.ErrInvalidImport) || len(done) != 0 {
				t.Errorf("Import(%q) = %v, %v; want nothing, ErrInvalidImport", id, done, err)
			}
		}
		if _, err := pl.tokens.Snapshot("wxgood"); !errors.Is(err, token.ErrUnknown) {
			t.Fatal("a refused import list imported its valid entries")
		}
	})
}

// TestImportKeepsLiveRefreshTokens: an import leaves a held authorizer's
// refresh token alone unless asked to replace it, and takes over one whose
// authorization was withdrawn (the new refresh token is the only one).
func TestImportKeepsLiveRefreshTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := startPlatform(t, wxtest.Config{}, memory.New(), nil)
		time.Sleep(time.Second)
		for _, id := range []string{"wxlive", "wxgone"} {
			if _, err := pl.fake.Authorize(t.Context(), comp.AppID, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := pl.fake.Unauthorize(t.Context(), comp.AppID, "wxgone"); err != nil {
			t.Fatal(err)
		}
		live := storedRecord(t, pl.store, "plat/wxlive").State
		list := []component.Import{{AppID: "wxlive", RefreshToken: "other"}, {AppID: "wxgone", RefreshToken: "new"}}
		done, err := pl.p.Import(t.Context(), list, false)
		want := []component.ImportResult{{AppID: "wxlive", Result: component.SkippedExisting}, {AppID: "wxgone", Result: component.Imported}}
		if err != nil || fmt.Sprint(done) != fmt.Sprint(want) {
			t.Fatalf("Import = %v, %v; want %v", done, err, want)
		}
		if got := storedRecord(t, pl.store, "plat/wxlive").State; got != live {
			t.Fatalf("a live authorizer's refresh token became %q", got)
		}
		if rec := storedRecord(t, pl.store, "plat/wxgone"); rec.State != "new" || rec.Revoked {
			t.Fatalf("the withdrawn authorizer holds %+v after its import, want refresh token new", rec)
		}
		if _, err := pl.p.Import(t.Context(), []component.Import{list[0], list[0]}, true); !errors.Is(err, component.ErrInvalidImport) {
			t.Fatalf("an appid listed twice: %v, want ErrInvalidImport", err)
		}
		done, err = pl.p.Import(t.Context(), list[:1], true)
		if err != nil || len(done) != 1 || done[0].Result != component.Replaced || storedRecord(t, pl.store, "plat/wxlive").State != "other" {
			t.Fatalf("Import with replace = %v, %v; want wxlive replaced", done, err)
		}
	})
}

// TestPage: pages list the platform's own authorizers in appid order, from
// just after the cursor, and end with an empty cursor; the component
// credential and other credentials are left out.
func TestPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := startPlatform(t, wxtest.Config{}, memory.New(), nil)
		var list []component.Import
		for _, id := range []string{"wxe", "wxa", "wxd", "wxb", "wxc"} {
			list = append(list, component.Import{AppID: id, RefreshToken: "r-" + id})
		}
		if _, err := pl.p.Import(t.Context(), list, false); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			cursor string
			limit  int
			want   string // ids, then the next cursor after "|"
		}{
			{"", 2, "plat/wxa plat/wxb|wxb"},
			{"wxb", 2, "plat/wxc plat/wxd|wxd"},
			{"wxd", 2, "plat/wxe|"},
			{"", 5, "plat/wxa plat/wxb plat/wxc plat/wxd plat/wxe|"},
			{"", 4, "plat/wxa plat/wxb plat/wxc plat/wxd|wxd"},
			{"wxbb", 1, "plat/wxc|wxc"}, // a cursor that is no appid
			{"wxe", 3, "|"},
		}
		ids := pl.tokens.IDs()
		for _, tt := range tests {
			page, next := pl.p.Page(ids, tt.cursor, tt.limit)
			var got []string
			for _, s := range page {
				got = append(got, s.ID)
			}
			if g := strings.Join(got, " ") + "|" + next; g != tt.want {
				t.Errorf("Page(cursor %q, limit %d) = %s, want %s", tt.cursor, tt.limit, g, tt.want)
			}
		}
	})
}
