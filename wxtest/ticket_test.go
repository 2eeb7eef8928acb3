package wxtest

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func (c caller) corpTicket(token string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, "/cgi-bin/get_jsapi_ticket", url.Values{"access_token": {token}}, "")
}

func (c caller) agentTicket(token, typ string) reply {
	c.t.Helper()
	return c.do(http.MethodGet, "/cgi-bin/ticket/get", url.Values{"access_token": {token}, "type": {typ}}, "")
}

// mustTicket fails the test unless r carries a ticket with expires_in want.
func mustTicket(t testing.TB, r reply, want int) string {
	t.Helper()
	if r.ErrCode != 0 || r.ErrMsg != "ok" || r.Ticket == "" || r.ExpiresIn != want {
		t.Fatalf("want a ticket with expires_in %d, got %s", want, r.Body)
	}
	return r.Ticket
}

// TestTicketRepeats: within its life a ticket is handed out again, always
// with expires_in 7200, whichever of the account's tokens asks and however
// many new tokens were issued; then a new one comes.
func TestTicketRepeats(t *testing.T) {
	e := newEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))
	jsapi := mustTicket(t, e.ticket(tok, TicketJSAPI), 7200)
	card := mustTicket(t, e.ticket(tok, TicketCard), 7200)
	if card == jsapi {
		t.Fatal("jsapi and wx_card tickets are the same")
	}
	key := TicketKey{Account: appID, Type: TicketJSAPI}
	want := TicketInfo{Key: key, Value: jsapi, Issued: morning, Expires: morning.Add(7200 * time.Second)}
	if got, ok := e.f.TicketInfo(key); !ok || got != want {
		t.Fatalf("TicketInfo = %+v, %v; want %+v", got, ok, want)
	}

	// An hour on, with a new classic token (the first still in its overlap)
	// and a stable one, every fetch gets the same ticket and 7200.
	e.clk.Advance(time.Hour)
	newer := mustToken(t, e.classic(appID, appSecret))
	stable := mustToken(t, e.stable(appID, appSecret, false))
	for _, tk := range []string{tok, newer, stable} {
		if got := mustTicket(t, e.ticket(tk, TicketJSAPI), 7200); got != jsapi {
			t.Errorf("jsapi ticket within its life: %q, want the first %q", got, jsapi)
		}
	}
	if got := mustTicket(t, e.ticket(newer, TicketCard), 7200); got != card {
		t.Errorf("wx_card ticket within its life: %q, want the first %q", got, card)
	}

	// A second before the end, still the same; at the end, a new one.
	e.clk.Advance(time.Hour - time.Second)
	if got := mustTicket(t, e.ticket(stable, TicketJSAPI), 7200); got != jsapi {
		t.Errorf("jsapi ticket a second before expiry: %q, want %q", got, jsapi)
	}
	e.clk.Advance(time.Second)
	fresh := mustToken(t, e.classic(appID, appSecret))
	next := mustTicket(t, e.ticket(fresh, TicketJSAPI), 7200)
	if next == jsapi {
		t.Fatal("a fetch after expiry returned the expired ticket")
	}
	end := morning.Add(7200 * time.Second)
	if got, _ := e.f.TicketInfo(key); got.Value != next || !got.Issued.Equal(end) || !got.Expires.Equal(end.Add(7200*time.Second)) {
		t.Errorf("TicketInfo after renewal = %+v; want %q issued at %v", got, next, end)
	}
	if old, ok := e.f.LookupTicket(jsapi); !ok || old.Key != key || !old.Expires.Equal(end) {
		t.Errorf("LookupTicket of the expired ticket = %+v, %v; want it known, expired at %v", old, ok, end)
	}
	if _, ok := e.f.LookupTicket("1_never-issued"); ok {
		t.Error("LookupTicket of a value never issued reports it known")
	}

	// Fetches: 2 + 4 + 1 + 1 traced to the account; 6 + 1 of them jsapi.
	if got := e.f.Stats(appID).TicketCalls; got != 8 {
		t.Errorf("Stats.TicketCalls = %d, want 8", got)
	}
	if got := e.f.TicketCalls(key); got != 6 {
		t.Errorf("TicketCalls(jsapi) = %d, want 6", got)
	}
	if got := e.f.TicketCalls(TicketKey{Account: appID, Type: TicketCard}); got != 2 {
		t.Errorf("TicketCalls(wx_card) = %d, want 2", got)
	}
}

func TestTicketLifetime(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		{"default", Config{}, 7200 * time.Second},
		{"follows Lifetime", Config{Lifetime: time.Hour}, time.Hour},
		{"own", Config{Lifetime: time.Hour, TicketLifetime: 10 * time.Minute}, 10 * time.Minute},
		{"under a second", Config{TicketLifetime: time.Millisecond}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			secs := int(tt.want / time.Second)
			tok := mustToken(t, e.stable(appID, appSecret, false))
			first := mustTicket(t, e.ticket(tok, TicketJSAPI), secs)
			e.clk.Advance(tt.want - time.Second/2)
			if got := mustTicket(t, e.ticket(tok, TicketJSAPI), secs); got != first {
				t.Errorf("ticket before its end: %q, want %q", got, first)
			}
			e.clk.Advance(time.Second / 2)
			tok = mustToken(t, e.stable(appID, appSecret, false))
			if got := mustTicket(t, e.ticket(tok, TicketJSAPI), secs); got == first {
				t.Error("ticket at its end was handed out again")
			}
		})
	}
}

func TestExpireTicket(t *testing.T) {
	e := newEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))
	first := mustTicket(t, e.ticket(tok, TicketJSAPI), 7200)
	card := mustTicket(t, e.ticket(tok, TicketCard), 7200)
	e.clk.Advance(time.Minute)
	key := TicketKey{Account: appID, Type: TicketJSAPI}
	e.f.ExpireTicket(key)
	e.f.ExpireTicket(TicketKey{Account: "wx-unknown", Type: TicketJSAPI}) // ignored
	if got, _ := e.f.TicketInfo(key); got.Value != first || !got.Expires.Equal(morning.Add(time.Minute)) {
		t.Errorf("TicketInfo after ExpireTicket = %+v; want %q expiring now", got, first)
	}
	second := mustTicket(t, e.ticket(tok, TicketJSAPI), 7200)
	if second == first {
		t.Fatal("ExpireTicket: the next fetch returned the ended ticket")
	}
	if got := mustTicket(t, e.ticket(tok, TicketCard), 7200); got != card {
		t.Errorf("ExpireTicket of jsapi changed the wx_card ticket: %q, want %q", got, card)
	}
	if got, _ := e.f.TicketInfo(key); got.Value != second || !got.Issued.Equal(morning.Add(time.Minute)) {
		t.Errorf("TicketInfo after the new fetch = %+v; want %q issued now", got, second)
	}
}

// TestTicketTokenErrors: a fetch needs a token the host currently accepts,
// and answers as other token uses do.
func TestTicketTokenErrors(t *testing.T) {
	e := newEnv(t, Config{Overlap: time.Minute})
	replaced := mustToken(t, e.classic(appID, appSecret))
	tok := mustToken(t, e.classic(appID, appSecret))
	wecom := mustToken(t, e.wecom(corpID, corpSecret))
	e.clk.Advance(time.Minute) // past replaced's overlap
	// A token shaped like the fake's own that it never issued.
	unknown := mustToken(t, newEnv(t, Config{}).classic(appID, appSecret))

	tests := []struct {
		name  string
		fetch func() reply
		code  int
	}{
		{"getticket: bad type", func() reply { return e.ticket(tok, "nope") }, codeInvalidArgs},
		{"getticket: no type", func() reply { return e.ticket(tok, "") }, codeInvalidArgs},
		{"getticket: agent_config", func() reply { return e.ticket(tok, TicketAgent) }, codeInvalidArgs},
		{"getticket: no token", func() reply { return e.ticket("", TicketJSAPI) }, codeTokenMissing},
		{"getticket: garbage token", func() reply { return e.ticket("xyz", TicketJSAPI) }, codeInvalidToken},
		{"getticket: unknown token", func() reply { return e.ticket(unknown, TicketJSAPI) }, codeInvalidCredential},
		{"getticket: replaced token past its overlap", func() reply { return e.ticket(replaced, TicketJSAPI) }, codeInvalidCredential},
		{"getticket: WeCom token", func() reply { return e.ticket(wecom, TicketJSAPI) }, codeInvalidCredential},
		{"get_jsapi_ticket: app token", func() reply { return e.corpTicket(tok) }, codeInvalidToken},
		{"get_jsapi_ticket: no token", func() reply { return e.corpTicket("") }, codeTokenMissing},
		{"get_jsapi_ticket: unknown token", func() reply { return e.corpTicket(unknown) }, codeInvalidCredential},
		{"ticket/get: app token", func() reply { return e.agentTicket(tok, TicketAgent) }, codeInvalidToken},
		{"ticket/get: bad type", func() reply { return e.agentTicket(wecom, "jsapi") }, codeInvalidArgs},
		{"ticket/get: no type", func() reply { return e.agentTicket(wecom, "") }, codeInvalidArgs},
	}
	for _, tt := range tests {
		if r := tt.fetch(); r.ErrCode != tt.code || r.Ticket != "" {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.code)
		}
	}

	e.clk.Advance(2 * time.Hour)
	if r := e.ticket(tok, TicketJSAPI); r.ErrCode != codeTokenExpired {
		t.Errorf("getticket with an expired token: %s, want errcode %d", r.Body, codeTokenExpired)
	}
	if r := e.corpTicket(wecom); r.ErrCode != codeTokenExpired {
		t.Errorf("get_jsapi_ticket with an expired token: %s, want errcode %d", r.Body, codeTokenExpired)
	}
	if r := e.agentTicket(wecom, TicketAgent); r.ErrCode != codeTokenExpired {
		t.Errorf("ticket/get with an expired token: %s, want errcode %d", r.Body, codeTokenExpired)
	}
	if _, ok := e.f.TicketInfo(TicketKey{Account: appID, Type: TicketJSAPI}); ok {
		t.Error("failed fetches issued a ticket")
	}

	// Traced to the app: 3 bad types, the replaced token, the expired
	// one; the app's tokens at the WeCom endpoints are not the WeCom
	// host's, so they are not traced. Traced to the corp: 2 bad types and
	// the 2 expired uses.
	if got := e.f.Stats(appID).TicketCalls; got != 5 {
		t.Errorf("app Stats.TicketCalls = %d, want 5", got)
	}
	if got := e.f.Stats(corpID).TicketCalls; got != 4 {
		t.Errorf("corp Stats.TicketCalls = %d, want 4", got)
	}
	if got := e.f.TicketCalls(TicketKey{Account: appID, Type: TicketJSAPI}); got != 2 {
		t.Errorf("TicketCalls(app jsapi) = %d, want 2", got)
	}
	if got := e.f.TicketCalls(TicketKey{Account: corpID, Type: TicketAgent, App: corpSecret}); got != 1 {
		t.Errorf("TicketCalls(agent) = %d, want 1", got)
	}
}

// TestWeComTickets: the corp ticket is one per corp, the agent ticket one
// per application; both repeat within their life with expires_in 7200.
func TestWeComTickets(t *testing.T) {
	e := newEnv(t, Config{})
	const otherSecret = "corp-secret-2"
	e.f.AddCorp(corpID, otherSecret)
	a := mustToken(t, e.wecom(corpID, corpSecret))
	b := mustToken(t, e.wecom(corpID, otherSecret))

	corp := mustTicket(t, e.corpTicket(a), 7200)
	if got := mustTicket(t, e.corpTicket(b), 7200); got != corp {
		t.Errorf("corp ticket with another application's token: %q, want the corp's %q", got, corp)
	}
	agentA := mustTicket(t, e.agentTicket(a, TicketAgent), 7200)
	agentB := mustTicket(t, e.agentTicket(b, TicketAgent), 7200)
	if agentA == agentB || agentA == corp || agentB == corp {
		t.Fatalf("corp %q, agent tickets %q and %q: want three different tickets", corp, agentA, agentB)
	}

	// Half an hour on, with new tokens (each call issues one), the same.
	e.clk.Advance(30 * time.Minute)
	a2 := mustToken(t, e.wecom(corpID, corpSecret))
	if got := mustTicket(t, e.corpTicket(a2), 7200); got != corp {
		t.Errorf("corp ticket after a new token: %q, want %q", got, corp)
	}
	if got := mustTicket(t, e.agentTicket(a2, TicketAgent), 7200); got != agentA {
		t.Errorf("agent ticket after a new token: %q, want %q", got, agentA)
	}

	keyA := TicketKey{Account: corpID, Type: TicketAgent, App: corpSecret}
	want := TicketInfo{Key: keyA, Value: agentA, Issued: morning, Expires: morning.Add(7200 * time.Second)}
	if got, ok := e.f.TicketInfo(keyA); !ok || got != want {
		t.Errorf("TicketInfo(agent) = %+v, %v; want %+v", got, ok, want)
	}
	corpKey := TicketKey{Account: corpID, Type: TicketJSAPI}
	if got, _ := e.f.TicketInfo(corpKey); got.Value != corp {
		t.Errorf("TicketInfo(corp) = %+v; want %q", got, corp)
	}

	e.clk.Advance(90 * time.Minute)
	a3 := mustToken(t, e.wecom(corpID, corpSecret))
	if got := mustTicket(t, e.corpTicket(a3), 7200); got == corp {
		t.Error("corp ticket after expiry: the expired one again")
	}
	if got := mustTicket(t, e.agentTicket(a3, TicketAgent), 7200); got == agentA {
		t.Error("agent ticket after expiry: the expired one again")
	}
	if got := e.f.TicketCalls(corpKey); got != 4 {
		t.Errorf("TicketCalls(corp) = %d, want 4", got)
	}
	if got := e.f.TicketCalls(keyA); got != 3 {
		t.Errorf("TicketCalls(agent A) = %d, want 3", got)
	}
	if got := e.f.Stats(corpID).TicketCalls; got != 8 {
		t.Errorf("Stats.TicketCalls = %d, want 8", got)
	}
}

// TestWeComTicketAppLimit: 100 ticket fetches an hour per application,
// corp and agent tickets together; past it 45009 for an hour, while the
// corp's other applications go on.
func TestWeComTicketAppLimit(t *testing.T) {
	e := newEnv(t, Config{})
	const otherSecret = "corp-secret-2"
	e.f.AddCorp(corpID, otherSecret)
	a := mustToken(t, e.wecom(corpID, corpSecret))
	b := mustToken(t, e.wecom(corpID, otherSecret))

	for i := range 100 {
		var r reply
		if i%2 == 0 {
			r = e.corpTicket(a)
		} else {
			r = e.agentTicket(a, TicketAgent)
		}
		if r.ErrCode != 0 {
			t.Fatalf("fetch %d of 100: %s", i+1, r.Body)
		}
		e.clk.Advance(10 * time.Second) // 100 fetches over 16m40s
	}
	blockedAt := e.clk.Now()
	for _, r := range []reply{e.corpTicket(a), e.agentTicket(a, TicketAgent)} {
		if r.ErrCode != codeDailyQuota || r.ErrMsg != "api freq out of limit" || r.Ticket != "" {
			t.Errorf("fetch 101: %s, want errcode %d api freq out of limit", r.Body, codeDailyQuota)
		}
	}
	if r := e.agentTicket(b, TicketAgent); r.ErrCode != 0 {
		t.Errorf("another application of the corp: %s, want a ticket", r.Body)
	}

	// The block lasts an hour from the fetch that hit the limit, though
	// the first fetches left the window before that.
	e.clk.Set(blockedAt.Add(time.Hour - time.Second))
	if r := e.corpTicket(a); r.ErrCode != codeDailyQuota {
		t.Errorf("a second before the block ends: %s, want errcode %d", r.Body, codeDailyQuota)
	}
	e.clk.Set(blockedAt.Add(time.Hour))
	a = mustToken(t, e.wecom(corpID, corpSecret))
	if r := e.corpTicket(a); r.ErrCode != 0 {
		t.Errorf("after the block: %s, want a ticket", r.Body)
	}
	if got := e.f.Stats(corpID).TicketCalls; got != 105 {
		t.Errorf("Stats.TicketCalls = %d, want 105 (refused fetches count)", got)
	}
}

// TestWeComTicketCorpLimit: 400 ticket fetches an hour per corp, whichever
// applications make them.
func TestWeComTicketCorpLimit(t *testing.T) {
	e := newEnv(t, Config{})
	secrets := []string{corpSecret, "s2", "s3", "s4", "s5"}
	tokens := make([]string, len(secrets))
	for i, s := range secrets {
		e.f.AddCorp(corpID, s)
		tokens[i] = mustToken(t, e.wecom(corpID, s))
	}
	for i := range 400 {
		if r := e.agentTicket(tokens[i%5], TicketAgent); r.ErrCode != 0 {
			t.Fatalf("fetch %d of 400 (80 per application): %s", i+1, r.Body)
		}
	}
	for i, tok := range tokens {
		if r := e.corpTicket(tok); r.ErrCode != codeDailyQuota {
			t.Errorf("application %d, fetch 401 of the corp: %s, want errcode %d", i+1, r.Body, codeDailyQuota)
		}
	}
	// Another corp is not held back.
	const otherCorp = "ww0000000000000002"
	e.f.AddCorp(otherCorp, corpSecret)
	if r := e.corpTicket(mustToken(t, e.wecom(otherCorp, corpSecret))); r.ErrCode != 0 {
		t.Errorf("another corp: %s, want a ticket", r.Body)
	}
	e.clk.Advance(time.Hour)
	if r := e.corpTicket(mustToken(t, e.wecom(corpID, "s5"))); r.ErrCode != 0 {
		t.Errorf("an hour later: %s, want a ticket", r.Body)
	}
}

// TestAuthorizerTickets: an authorizer_access_token fetches the
// authorizer appid's tickets, which repeat like any account's.
func TestAuthorizerTickets(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctok := e.componentAccess()
	code, _ := e.authorize(authorizerAppID)
	auth := e.queryAuth(ctok, componentAppID, code)
	if auth.ErrCode != 0 {
		t.Fatalf("query_auth: %s", auth.Body)
	}
	first := mustTicket(t, e.caller.ticket(auth.Info.AccessToken, TicketJSAPI), 7200)

	e.clk.Advance(time.Hour)
	refreshed := e.authorizerToken(ctok, componentAppID, authorizerAppID, auth.Info.RefreshToken)
	if refreshed.ErrCode != 0 {
		t.Fatalf("api_authorizer_token: %s", refreshed.Body)
	}
	if got := mustTicket(t, e.caller.ticket(refreshed.AccessToken, TicketJSAPI), 7200); got != first {
		t.Errorf("ticket with the refreshed authorizer token: %q, want %q", got, first)
	}
	key := TicketKey{Account: authorizerAppID, Type: TicketJSAPI}
	if got, ok := e.f.TicketInfo(key); !ok || got.Value != first || !got.Issued.Equal(morning) {
		t.Errorf("TicketInfo(authorizer) = %+v, %v; want %q issued at %v", got, ok, first, morning)
	}
	if got := e.f.TicketCalls(key); got != 2 {
		t.Errorf("TicketCalls(authorizer) = %d, want 2", got)
	}
	if _, ok := e.f.TicketInfo(TicketKey{Account: componentAppID, Type: TicketJSAPI}); ok {
		t.Error("the authorizer's fetch issued a ticket to the component")
	}

	// Unauthorize ends the authorizer's tokens: 40001 from then on.
	if err := e.f.Unauthorize(t.Context(), componentAppID, authorizerAppID); err != nil {
		t.Fatal(err)
	}
	if r := e.caller.ticket(refreshed.AccessToken, TicketJSAPI); r.ErrCode != codeInvalidCredential {
		t.Errorf("ticket after Unauthorize: %s, want errcode %d", r.Body, codeInvalidCredential)
	}
}
