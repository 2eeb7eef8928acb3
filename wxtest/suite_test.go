package wxtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
)

func TestSuiteToken(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	if r := e.suiteToken(suiteID, suiteSecret, "never-pushed"); r.code() != codeBadSuiteTicket {
		t.Errorf("before any push: %s, want errcode %d", r.Body, codeBadSuiteTicket)
	}
	ticket := e.ticket(suiteID)
	r := e.suiteToken(suiteID, suiteSecret, ticket)
	if r.ErrCode != nil || r.SuiteAccessToken == "" || r.ExpiresIn != 7200 {
		t.Fatalf("get_suite_token = %s; want a token, expires_in 7200 and no errcode", r.Body)
	}
	if info, ok := e.f.TokenInfo(r.SuiteAccessToken); !ok || info.Account != suiteID {
		t.Errorf("TokenInfo of a suite token = %+v, %v; want the suite's", info, ok)
	}
	first := r.SuiteAccessToken
	second := e.suiteToken(suiteID, suiteSecret, ticket).SuiteAccessToken
	if second == "" || second == first {
		t.Fatalf("second get_suite_token = %q; want a new token", second)
	}
	// A suite token works where get_permanent_code finds only a bad code.
	if r := e.permanentCode(first, "no-such-code", false); r.code() != codeBadAuthCode {
		t.Errorf("replaced suite token within the overlap: %s, want errcode %d", r.Body, codeBadAuthCode)
	}
	e.clk.Advance(5 * time.Minute)
	if r := e.permanentCode(first, "no-such-code", false); r.code() != codeBadSuiteToken {
		t.Errorf("replaced suite token after the overlap: %s, want errcode %d", r.Body, codeBadSuiteToken)
	}
	if r := e.permanentCode(second, "no-such-code", false); r.code() != codeBadAuthCode {
		t.Errorf("current suite token: %s, want errcode %d", r.Body, codeBadAuthCode)
	}
	e.clk.Advance(2 * time.Hour)
	if r := e.permanentCode(second, "no-such-code", false); r.code() != codeSuiteTokenExpired {
		t.Errorf("suite token after its lifetime: %s, want errcode %d", r.Body, codeSuiteTokenExpired)
	}
	third := e.suiteAccess(suiteID, suiteSecret)
	e.f.Expire(suiteID)
	if r := e.permanentCode(third, "no-such-code", false); r.code() != codeSuiteTokenExpired {
		t.Errorf("suite token after Expire: %s, want errcode %d", r.Body, codeSuiteTokenExpired)
	}
	if st := e.f.Stats(suiteID); st.SuiteTokenCalls != 4 || st.Issued != 3 || st.PermanentCodeCalls != 5 {
		t.Errorf("Stats = %+v; want 4 suite token calls, 3 issued, 5 permanent code calls", st)
	}
}

func TestSuiteTokenErrors(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	ticket := e.ticket(suiteID)
	customTicket := e.ticket(customSuiteID)
	tests := []struct {
		name            string
		id, secret, tkt string
		want            int
	}{
		{"unknown suite", "ww-unknown", suiteSecret, ticket, codeBadSuiteID},
		{"wrong secret", suiteID, "wrong", ticket, codeBadSuiteSecret},
		{"another suite's secret", suiteID, customSecret, ticket, codeBadSuiteSecret},
		{"another suite's ticket", suiteID, suiteSecret, customTicket, codeBadSuiteTicket},
		{"a ticket never pushed", suiteID, suiteSecret, "ticket-never-pushed", codeBadSuiteTicket},
		{"no ticket", suiteID, suiteSecret, "", codeBadSuiteTicket},
	}
	for _, tt := range tests {
		if r := e.suiteToken(tt.id, tt.secret, tt.tkt); r.code() != tt.want {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.want)
		}
	}
	if r := e.do(http.MethodGet, "/cgi-bin/service/get_suite_token", nil, ""); r.ErrCode != codeRequireMethod {
		t.Errorf("GET: %s, want errcode %d", r.Body, codeRequireMethod)
	}
	if r := e.do(http.MethodPost, "/cgi-bin/service/get_suite_token", nil, "{"); r.ErrCode != codeDataFormat {
		t.Errorf("malformed body: %s, want errcode %d", r.Body, codeDataFormat)
	}

	// Tokens of other kinds are not suite tokens.
	corp := mustToken(t, e.wecom(corpID, corpSecret))
	provider := e.providerToken(providerCorpID, providerSecret).ProviderAccessToken
	for name, tok := range map[string]string{"corp token": corp, "provider token": provider, "garbage": "x"} {
		if r := e.permanentCode(tok, "code", false); r.code() != codeBadSuiteToken {
			t.Errorf("%s at get_permanent_code: %s, want errcode %d", name, r.Body, codeBadSuiteToken)
		}
	}
	if r := e.permanentCode("", "code", false); r.code() != codeTokenMissing {
		t.Errorf("no suite token: %s, want errcode %d", r.Body, codeTokenMissing)
	}
	if r := e.corpToken("", authCorpID, "code"); r.code() != codeTokenMissing {
		t.Errorf("no suite token at get_corp_token: %s, want errcode %d", r.Body, codeTokenMissing)
	}

	e.f.SetWhitelist("10.0.0.1")
	if r := e.suiteToken(suiteID, suiteSecret, ticket); r.code() != codeWeComIPDenied || !strings.Contains(r.ErrMsg, "127.0.0.1") {
		t.Errorf("caller off the whitelist: %s, want errcode %d naming the IP", r.Body, codeWeComIPDenied)
	}
}

// TestSuiteTicketValidity: the current and the previous ticket are
// accepted, each for 30 minutes from its push.
func TestSuiteTicketValidity(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	ok := func(ticket string) bool {
		t.Helper()
		switch r := e.suiteToken(suiteID, suiteSecret, ticket); r.code() {
		case 0:
			return true
		case codeBadSuiteTicket:
			return false
		default:
			t.Fatalf("get_suite_token: %s", r.Body)
		}
		return false
	}
	t1 := e.ticket(suiteID)
	e.clk.Advance(10 * time.Minute)
	t2 := e.ticket(suiteID)
	if !ok(t1) || !ok(t2) {
		t.Fatal("after a second push: the current or the previous ticket refused")
	}
	e.clk.Advance(10 * time.Minute)
	t3 := e.ticket(suiteID)
	if ok(t1) {
		t.Error("a ticket two pushes old accepted")
	}
	if !ok(t2) || !ok(t3) {
		t.Error("the previous or the current ticket refused after a third push")
	}
	// t2 was pushed at 10 min, t3 at 20 min; the clock is at 20 min.
	e.clk.Advance(20*time.Minute - time.Second)
	if !ok(t2) {
		t.Error("previous ticket refused just inside its 30 minutes")
	}
	e.clk.Advance(time.Second)
	if ok(t2) || !ok(t3) {
		t.Error("at 30 minutes from its push the previous ticket is still accepted, or the current one refused")
	}
	e.clk.Advance(10 * time.Minute)
	if ok(t3) {
		t.Error("current ticket accepted 30 minutes after its push")
	}
}

func TestSuiteTicketPush(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	type capture struct {
		r    *http.Request
		body []byte
	}
	var got capture
	e.f.SetPushTarget(suiteID, "https://provider.example/wecom/suite?s=1", HandlerClient(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got = capture{r, body}
			io.WriteString(w, "success")
		})))
	ticket, err := e.f.PushSuiteTicket(context.Background(), suiteID)
	if err != nil {
		t.Fatal(err)
	}
	q := got.r.URL.Query()
	if len(q) != 4 || q.Get("s") != "1" || q.Get("msg_signature") == "" || q.Get("nonce") == "" ||
		q.Get("timestamp") != strconv.FormatInt(morning.Unix(), 10) {
		t.Errorf("query %s: want the target's own, msg_signature, timestamp and nonce only", got.r.URL.RawQuery)
	}
	body := string(got.body)
	if !strings.HasPrefix(body, "<xml><ToUserName><![CDATA["+suiteID+"]]></ToUserName><Encrypt><![CDATA[") ||
		!strings.HasSuffix(body, "]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>") {
		t.Errorf("envelope %s: want WeCom's, addressed to the suite id", body)
	}
	encrypt := strings.TrimSuffix(strings.TrimPrefix(body, "<xml><ToUserName><![CDATA["+suiteID+"]]></ToUserName><Encrypt><![CDATA["),
		"]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>")
	theirs, _ := callback.NewCrypter(testSuite.Token, testSuite.EncodingAESKey, customSuiteID)
	if _, err := theirs.Decrypt(encrypt); !errors.Is(err, callback.ErrReceiveID) {
		t.Errorf("decrypting for another suite id: %v, want ErrReceiveID", err)
	}
	mine, _ := callback.NewCrypter(testSuite.Token, testSuite.EncodingAESKey, suiteID)
	plain, err := mine.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), got.body)
	if err != nil {
		t.Fatalf("decrypting for the suite id: %v", err)
	}
	want := fmt.Sprintf("<xml><SuiteId><![CDATA[%s]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>"+
		"<TimeStamp>%d</TimeStamp><SuiteTicket><![CDATA[%s]]></SuiteTicket></xml>", suiteID, morning.Unix(), ticket)
	if string(plain) != want {
		t.Errorf("plaintext\n%s\nwant\n%s", plain, want)
	}
	if len(plain) > 512 {
		t.Errorf("plaintext is %d bytes; WeCom's are at most 512", len(plain))
	}
}

func TestSuitePushNotAcknowledged(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	e.recv.setAnswer(func(w http.ResponseWriter) { io.WriteString(w, "ok") })
	ticket, err := e.f.PushSuiteTicket(context.Background(), suiteID)
	var pe *PushError
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusOK || pe.Body != "ok" {
		t.Fatalf("push answered ok: %v, want a *PushError", err)
	}
	if r := e.suiteToken(suiteID, suiteSecret, ticket); r.code() != 0 {
		t.Errorf("ticket of an unacknowledged push: %s", r.Body)
	}
	code, err := e.f.CreateAuth(context.Background(), suiteID, authCorpID)
	if !errors.As(err, &pe) || code == "" {
		t.Errorf("CreateAuth answered ok: %q, %v; want the code and a *PushError", code, err)
	}
	if st := e.f.Stats(suiteID); st.Pushes != 2 || st.PushFailures != 2 {
		t.Errorf("Stats = %+v, want 2 pushes, 2 failures", st)
	}

	e.f.AddSuite(Suite{SuiteID: "ww-no-target", Secret: "s", Token: "t", EncodingAESKey: testSuite.EncodingAESKey})
	ticket, err = e.f.PushSuiteTicket(context.Background(), "ww-no-target")
	if !errors.Is(err, ErrNoPushTarget) || ticket == "" {
		t.Errorf("PushSuiteTicket without a target: %q, %v; want a ticket and ErrNoPushTarget", ticket, err)
	}
	if _, err := e.f.PushSuiteTicket(context.Background(), "ww-unknown"); err == nil {
		t.Error("PushSuiteTicket for an unknown suite: no error")
	}
	if _, err := e.f.PushSuiteTicket(context.Background(), appID); err == nil {
		t.Error("PushSuiteTicket for an app: no error")
	}
}

func TestPushSuiteRaw(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	plain := []byte("<xml><SuiteId><![CDATA[" + suiteID + "]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>" +
		"<TimeStamp>" + strconv.FormatInt(morning.Unix(), 10) + "</TimeStamp><SuiteTicket><![CDATA[raw]]></SuiteTicket></xml>")
	status, body, err := e.f.PushSuiteRaw(context.Background(), suiteID, plain, nil)
	if err != nil || status != http.StatusOK || body != "success" || e.recv.last().SuiteTicket != "raw" {
		t.Fatalf("PushSuiteRaw = %d %q %v, received %+v", status, body, err, e.recv.last())
	}
	status, _, err = e.f.PushSuiteRaw(context.Background(), suiteID, plain, func(r *http.Request) {
		q := r.URL.Query()
		q.Set("msg_signature", strings.Repeat("0", 40))
		r.URL.RawQuery = q.Encode()
	})
	if err != nil || status != http.StatusBadRequest || len(e.recv.refusals()) != 1 {
		t.Errorf("tampered push: status %d, %v, refusals %v; want one refused with 400", status, err, e.recv.refusals())
	}
	if st := e.f.Stats(suiteID); st.Pushes != 0 {
		t.Errorf("Stats.Pushes = %d after raw pushes, want 0", st.Pushes)
	}
	if _, _, err := e.f.PushSuiteRaw(context.Background(), componentAppID, plain, nil); err == nil {
		t.Error("PushSuiteRaw for an unknown suite: no error")
	}
}

func TestSuiteAuthorization(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	stok := e.suiteAccess(suiteID, suiteSecret)
	code, err := e.f.CreateAuth(context.Background(), suiteID, authCorpID)
	if err != nil {
		t.Fatal(err)
	}
	ev := e.recv.last()
	if ev.InfoType != "create_auth" || ev.AuthCode != code || !ev.HasState || ev.AuthCorpID != "" {
		t.Fatalf("create_auth push = %+v; want the auth code %q and a State", ev, code)
	}
	if got := e.f.SuitePermanentCode(suiteID, authCorpID); got != "" {
		t.Errorf("SuitePermanentCode before the exchange = %q, want none", got)
	}
	r := e.permanentCode(stok, code, false)
	if r.ErrCode != nil || r.PermanentCode == "" || r.AccessToken != "" || r.ExpiresIn != 0 {
		t.Fatalf("v2 get_permanent_code = %s; want a permanent code, no token, no errcode", r.Body)
	}
	if r.AuthCorpInfo.CorpID != authCorpID || r.AuthCorpInfo.CorpName == "" || len(r.AuthInfo.Agent) != 1 ||
		r.AuthInfo.Agent[0].AgentID == 0 || r.IsCustomizedApp {
		t.Errorf("get_permanent_code = %s; want the corp, one agent, not customized", r.Body)
	}
	permanent, agent := r.PermanentCode, r.AuthInfo.Agent[0].AgentID
	if got := e.f.SuitePermanentCode(suiteID, authCorpID); got != permanent {
		t.Errorf("SuitePermanentCode = %q, want %q", got, permanent)
	}
	if r := e.permanentCode(stok, code, false); r.code() != codeBadAuthCode {
		t.Errorf("auth code exchanged twice: %s, want errcode %d", r.Body, codeBadAuthCode)
	}

	c := e.corpToken(stok, authCorpID, permanent)
	if c.ErrCode != nil || c.AccessToken == "" || c.ExpiresIn != 7200 {
		t.Fatalf("get_corp_token = %s; want a token, expires_in 7200 and no errcode", c.Body)
	}
	first := c.AccessToken
	if info, _ := e.f.TokenInfo(first); info.Account != suiteID+"/"+authCorpID {
		t.Errorf("TokenInfo of a corp token: %+v; want the authorization's", info)
	}
	second := e.corpToken(stok, authCorpID, permanent).AccessToken
	if second == "" || second == first {
		t.Fatalf("second get_corp_token = %q; want a new token", second)
	}
	if got := e.weComUse(first); got != 0 {
		t.Errorf("replaced corp token within the overlap: %d", got)
	}

	// The corp token fetches the corp's and the application's tickets.
	jsapi := e.do(http.MethodGet, "/cgi-bin/get_jsapi_ticket", url.Values{"access_token": {second}}, "")
	agentTicket := e.do(http.MethodGet, "/cgi-bin/ticket/get", url.Values{"access_token": {second}, "type": {"agent_config"}}, "")
	if jsapi.ErrCode != 0 || jsapi.Ticket == "" || agentTicket.ErrCode != 0 || agentTicket.Ticket == "" {
		t.Fatalf("tickets with a corp token: %s, %s", jsapi.Body, agentTicket.Body)
	}
	if info, ok := e.f.TicketInfo(TicketKey{Account: authCorpID, Type: TicketJSAPI}); !ok || info.Value != jsapi.Ticket {
		t.Errorf("TicketInfo of the corp ticket = %+v, %v; want %q", info, ok, jsapi.Ticket)
	}
	agentKey := TicketKey{Account: authCorpID, Type: TicketAgent, App: strconv.FormatInt(agent, 10)}
	if info, ok := e.f.TicketInfo(agentKey); !ok || info.Value != agentTicket.Ticket {
		t.Errorf("TicketInfo of the agent ticket = %+v, %v; want %q", info, ok, agentTicket.Ticket)
	}

	// A suite token or a provider token is not an application's.
	provider := e.providerToken(providerCorpID, providerSecret).ProviderAccessToken
	for name, tok := range map[string]string{"suite token": stok, "provider token": provider} {
		if got := e.weComUse(tok); got != codeInvalidToken {
			t.Errorf("%s at get_api_domain_ip: %d, want %d", name, got, codeInvalidToken)
		}
		if r := e.do(http.MethodGet, "/cgi-bin/get_jsapi_ticket", url.Values{"access_token": {tok}}, ""); r.ErrCode != codeInvalidToken {
			t.Errorf("%s at get_jsapi_ticket: %s, want errcode %d", name, r.Body, codeInvalidToken)
		}
		if r := e.do(http.MethodGet, "/cgi-bin/ticket/get", url.Values{"access_token": {tok}, "type": {"agent_config"}}, ""); r.ErrCode != codeInvalidToken {
			t.Errorf("%s at ticket/get: %s, want errcode %d", name, r.Body, codeInvalidToken)
		}
	}

	e.clk.Advance(5 * time.Minute)
	if got := e.weComUse(first); got != codeInvalidCredential {
		t.Errorf("replaced corp token after the overlap: %d, want %d", got, codeInvalidCredential)
	}
	if st := e.f.Stats(suiteID + "/" + authCorpID); st.CorpTokenCalls != 2 || st.Issued != 2 || st.TicketCalls != 2 {
		t.Errorf("Stats of the authorization = %+v; want 2 corp token calls, 2 issued, 2 ticket calls", st)
	}
	e.f.Expire(suiteID + "/" + authCorpID)
	if got := e.weComUse(second); got != codeTokenExpired {
		t.Errorf("corp token after Expire of the authorization: %d, want %d", got, codeTokenExpired)
	}
	if r := e.permanentCode(stok, "no-such-code", false); r.code() != codeBadAuthCode {
		t.Errorf("suite token after Expire of an authorization: %s; want it untouched", r.Body)
	}
}

func TestSuiteCorpTokenErrors(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	stok := e.suiteAccess(suiteID, suiteSecret)
	permanent := e.install(stok, suiteID, authCorpID).PermanentCode
	otherCorp := e.install(stok, suiteID, corpID).PermanentCode
	ctok := e.suiteAccess(customSuiteID, customSecret)
	customPermanent := e.install(ctok, customSuiteID, authCorpID).PermanentCode
	tests := []struct {
		name, token, corp, code string
		want                    int
	}{
		{"wrong permanent code", stok, authCorpID, "permanentcode@@@wrong", codeBadPermanentCode},
		{"another corp's permanent code", stok, authCorpID, otherCorp, codeBadPermanentCode},
		{"a custom suite's permanent code", stok, authCorpID, customPermanent, codeBadPermanentCode},
		{"corp never authorized", stok, "ww-unknown", permanent, codeBadPermanentCode},
		{"custom suite", ctok, authCorpID, customPermanent, codeAPIUnauthorized},
		{"not a suite token", permanent, authCorpID, permanent, codeBadSuiteToken},
	}
	for _, tt := range tests {
		if r := e.corpToken(tt.token, tt.corp, tt.code); r.code() != tt.want {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.want)
		}
	}
	if r := e.corpToken(stok, authCorpID, permanent); r.code() != 0 {
		t.Errorf("the right permanent code: %s", r.Body)
	}
}

// TestSuiteAuthCodeLife: an auth code is exchanged once, within 10
// minutes, by the suite that issued it.
func TestSuiteAuthCodeLife(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	stok := e.suiteAccess(suiteID, suiteSecret)
	ctok := e.suiteAccess(customSuiteID, customSecret)
	early, _ := e.f.CreateAuth(context.Background(), suiteID, authCorpID)
	late, _ := e.f.CreateAuth(context.Background(), suiteID, corpID)
	if r := e.permanentCode(ctok, early, false); r.code() != codeBadAuthCode {
		t.Errorf("another suite's auth code: %s, want errcode %d", r.Body, codeBadAuthCode)
	}
	e.clk.Advance(10*time.Minute - time.Second)
	if r := e.permanentCode(stok, early, false); r.code() != 0 {
		t.Errorf("auth code just inside 10 minutes: %s", r.Body)
	}
	e.clk.Advance(time.Second)
	if r := e.permanentCode(stok, late, false); r.code() != codeBadAuthCode {
		t.Errorf("auth code at 10 minutes: %s, want errcode %d", r.Body, codeBadAuthCode)
	}
	if r := e.permanentCode(stok, "authcode@@@never", true); r.code() != codeBadAuthCode {
		t.Errorf("unknown auth code at v1: %s, want errcode %d", r.Body, codeBadAuthCode)
	}
}

func TestSuitePermanentCodeV1(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	stok := e.suiteAccess(suiteID, suiteSecret)
	code, _ := e.f.CreateAuth(context.Background(), suiteID, authCorpID)
	r := e.permanentCode(stok, code, true)
	if r.ErrCode != nil || r.PermanentCode == "" || r.AccessToken == "" || r.ExpiresIn != 7200 || r.AuthCorpInfo.CorpID != authCorpID {
		t.Fatalf("v1 get_permanent_code = %s; want a permanent code and a corp token", r.Body)
	}
	if got := e.weComUse(r.AccessToken); got != 0 {
		t.Errorf("v1's corp token: %d", got)
	}
	// get_corp_token replaces it, with the usual overlap.
	next := e.corpToken(stok, authCorpID, r.PermanentCode).AccessToken
	e.clk.Advance(5 * time.Minute)
	if e.weComUse(r.AccessToken) != codeInvalidCredential || e.weComUse(next) != 0 {
		t.Error("v1's corp token was not replaced by get_corp_token's")
	}
}

func TestSuiteCancelAuth(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	stok := e.suiteAccess(suiteID, suiteSecret)
	first := e.install(stok, suiteID, authCorpID)
	old := e.corpToken(stok, authCorpID, first.PermanentCode).AccessToken
	cur := e.corpToken(stok, authCorpID, first.PermanentCode).AccessToken
	pending, _ := e.f.CreateAuth(context.Background(), suiteID, authCorpID)

	if err := e.f.ChangeAuth(context.Background(), suiteID, authCorpID); err != nil {
		t.Fatal(err)
	}
	if ev := e.recv.last(); ev.InfoType != "change_auth" || ev.AuthCorpID != authCorpID || ev.AuthCode != "" {
		t.Errorf("change_auth push = %+v", ev)
	}
	if err := e.f.CancelAuth(context.Background(), suiteID, authCorpID); err != nil {
		t.Fatal(err)
	}
	if ev := e.recv.last(); ev.InfoType != "cancel_auth" || ev.AuthCorpID != authCorpID {
		t.Errorf("cancel_auth push = %+v", ev)
	}
	for name, tok := range map[string]string{"current": cur, "replaced": old} {
		if got := e.weComUse(tok); got != codeInvalidCredential {
			t.Errorf("%s corp token after cancel_auth: %d, want %d", name, got, codeInvalidCredential)
		}
	}
	if r := e.corpToken(stok, authCorpID, first.PermanentCode); r.code() != codeBadPermanentCode {
		t.Errorf("permanent code after cancel_auth: %s, want errcode %d", r.Body, codeBadPermanentCode)
	}
	if r := e.permanentCode(stok, pending, false); r.code() != codeBadAuthCode {
		t.Errorf("auth code pending at cancel_auth: %s, want errcode %d", r.Body, codeBadAuthCode)
	}
	if got := e.f.SuitePermanentCode(suiteID, authCorpID); got != "" {
		t.Errorf("SuitePermanentCode after cancel_auth = %q", got)
	}
	if err := e.f.CancelAuth(context.Background(), suiteID, authCorpID); err == nil {
		t.Error("CancelAuth of a cancelled authorization: no error")
	}
	if err := e.f.ChangeAuth(context.Background(), suiteID, authCorpID); err == nil {
		t.Error("ChangeAuth of a cancelled authorization: no error")
	}
	if n := len(e.recv.all()); n != 5 {
		t.Errorf("%d pushes, want 5 (ticket, two create_auth, change_auth, cancel_auth)", n)
	}

	again := e.install(stok, suiteID, authCorpID)
	if again.PermanentCode == first.PermanentCode || again.AuthInfo.Agent[0].AgentID == first.AuthInfo.Agent[0].AgentID {
		t.Errorf("re-authorization: %s; want a new permanent code and agentid", again.Body)
	}
	if r := e.corpToken(stok, authCorpID, again.PermanentCode); r.code() != 0 {
		t.Errorf("new permanent code: %s", r.Body)
	}
	if r := e.corpToken(stok, authCorpID, first.PermanentCode); r.code() != codeBadPermanentCode {
		t.Errorf("old permanent code after re-authorization: %s, want errcode %d", r.Body, codeBadPermanentCode)
	}
}

// TestCustomSuite: a custom app's permanent code is the corp's app secret
// at gettoken, and reset_permanent_code replaces it.
func TestCustomSuite(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	ctok := e.suiteAccess(customSuiteID, customSecret)
	auth := e.install(ctok, customSuiteID, authCorpID)
	if !auth.IsCustomizedApp {
		t.Errorf("get_permanent_code of a dk suite = %s; want is_customized_app true", auth.Body)
	}
	old := auth.PermanentCode
	first := e.wecom(authCorpID, old)
	if first.ErrCode != 0 || first.AccessToken == "" || first.ExpiresIn != 7200 {
		t.Fatalf("gettoken with the permanent code = %s", first.Body)
	}
	agentTicket := e.do(http.MethodGet, "/cgi-bin/ticket/get", url.Values{"access_token": {first.AccessToken}, "type": {"agent_config"}}, "")
	if agentTicket.ErrCode != 0 || agentTicket.Ticket == "" {
		t.Errorf("agent ticket with a custom app's token: %s", agentTicket.Body)
	}

	if _, err := e.f.ResetPermanentCode(context.Background(), suiteID, authCorpID); err == nil {
		t.Error("ResetPermanentCode of a third-party suite: no error")
	}
	code, err := e.f.ResetPermanentCode(context.Background(), customSuiteID, authCorpID)
	if err != nil {
		t.Fatal(err)
	}
	if ev := e.customRecv.last(); ev.InfoType != "reset_permanent_code" || ev.AuthCode != code {
		t.Errorf("reset_permanent_code push = %+v; want the auth code %q", ev, code)
	}
	if r := e.wecom(authCorpID, old); r.ErrCode != 0 {
		t.Errorf("old permanent code before the exchange: %s", r.Body)
	}
	reset := e.permanentCode(ctok, code, false)
	if reset.code() != 0 || reset.PermanentCode == old || reset.AuthInfo.Agent[0].AgentID != auth.AuthInfo.Agent[0].AgentID {
		t.Fatalf("exchanging the reset code = %s; want a new permanent code for the same agent", reset.Body)
	}
	if r := e.wecom(authCorpID, old); r.ErrCode != codeInvalidCredential {
		t.Errorf("old permanent code after the exchange: %s, want errcode %d", r.Body, codeInvalidCredential)
	}
	if got := e.weComUse(first.AccessToken); got != 0 {
		t.Errorf("token of the old permanent code after the reset: %d; want it to live on", got)
	}
	next := e.wecom(authCorpID, reset.PermanentCode)
	if next.ErrCode != 0 || next.AccessToken == "" {
		t.Fatalf("gettoken with the new permanent code = %s", next.Body)
	}
	if st := e.f.Stats(customSuiteID + "/" + authCorpID); st.WeComCalls != 4 || st.Issued != 3 {
		t.Errorf("Stats of the authorization = %+v; want 4 gettoken calls, 3 issued", st)
	}
	if r := e.wecom(authCorpID, "wrong"); r.ErrCode != codeInvalidCredential {
		t.Errorf("authorized corp, wrong secret: %s, want errcode %d", r.Body, codeInvalidCredential)
	}
	if r := e.wecom(corpID, reset.PermanentCode); r.ErrCode != codeInvalidCredential {
		t.Errorf("another corp with the permanent code: %s, want errcode %d", r.Body, codeInvalidCredential)
	}

	if err := e.f.CancelAuth(context.Background(), customSuiteID, authCorpID); err != nil {
		t.Fatal(err)
	}
	if r := e.wecom(authCorpID, reset.PermanentCode); r.ErrCode != codeInvalidCredential {
		t.Errorf("permanent code after cancel_auth: %s, want errcode %d", r.Body, codeInvalidCredential)
	}
	if got := e.weComUse(next.AccessToken); got != codeInvalidCredential {
		t.Errorf("custom app token after cancel_auth: %d, want %d", got, codeInvalidCredential)
	}
	if _, err := e.f.ResetPermanentCode(context.Background(), customSuiteID, authCorpID); err == nil {
		t.Error("ResetPermanentCode of a cancelled authorization: no error")
	}
	// Ordinary corps are untouched.
	if r := e.wecom(corpID, corpSecret); r.ErrCode != 0 {
		t.Errorf("AddCorp corp: %s", r.Body)
	}
	if r := e.wecom("ww-unknown", "x"); r.ErrCode != codeInvalidAppID {
		t.Errorf("unknown corp: %s, want errcode %d", r.Body, codeInvalidAppID)
	}
}

func TestGrantSuite(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	stok := e.suiteAccess(suiteID, suiteSecret)
	permanent, err := e.f.GrantSuite(suiteID, authCorpID)
	if err != nil || permanent == "" || e.f.SuitePermanentCode(suiteID, authCorpID) != permanent {
		t.Fatalf("GrantSuite = %q, %v", permanent, err)
	}
	if r := e.corpToken(stok, authCorpID, permanent); r.code() != 0 {
		t.Errorf("granted permanent code: %s", r.Body)
	}
	again, _ := e.f.GrantSuite(suiteID, authCorpID)
	if r := e.corpToken(stok, authCorpID, permanent); again == permanent || r.code() != codeBadPermanentCode {
		t.Errorf("permanent code after a second GrantSuite: %s, want errcode %d", r.Body, codeBadPermanentCode)
	}
	custom, _ := e.f.GrantSuite(customSuiteID, authCorpID)
	if r := e.wecom(authCorpID, custom); r.ErrCode != 0 {
		t.Errorf("granted custom app's permanent code at gettoken: %s", r.Body)
	}
	if n := len(e.recv.all()) + len(e.customRecv.all()); n != 1 {
		t.Errorf("%d pushes, want only the ticket", n)
	}
	if _, err := e.f.GrantSuite("ww-unknown", authCorpID); err == nil {
		t.Error("GrantSuite of an unknown suite: no error")
	}
	if _, err := e.f.CreateAuth(context.Background(), appID, authCorpID); err == nil {
		t.Error("CreateAuth of an app: no error")
	}
}

func TestProviderToken(t *testing.T) {
	e := newSuiteEnv(t, Config{})
	if r := e.providerToken("ww-unknown", providerSecret); r.code() != codeInvalidAppID {
		t.Errorf("unknown corpid: %s, want errcode %d", r.Body, codeInvalidAppID)
	}
	if r := e.providerToken(corpID, corpSecret); r.code() != codeInvalidAppID {
		t.Errorf("a corp that is no provider: %s, want errcode %d", r.Body, codeInvalidAppID)
	}
	if r := e.providerToken(providerCorpID, "wrong"); r.code() != codeInvalidCredential {
		t.Errorf("wrong secret: %s, want errcode %d", r.Body, codeInvalidCredential)
	}
	first := e.providerToken(providerCorpID, providerSecret)
	if first.ErrCode != nil || first.ProviderAccessToken == "" || first.ExpiresIn != 7200 {
		t.Fatalf("get_provider_token = %s", first.Body)
	}
	e.clk.Advance(time.Hour)
	same := e.providerToken(providerCorpID, providerSecret)
	if same.ProviderAccessToken != first.ProviderAccessToken || same.ExpiresIn != 3600 {
		t.Errorf("within its life: %s; want the same token with 3600 s left", same.Body)
	}
	e.clk.Advance(time.Hour)
	next := e.providerToken(providerCorpID, providerSecret)
	if next.ProviderAccessToken == first.ProviderAccessToken || next.ExpiresIn != 7200 {
		t.Errorf("after its life: %s; want a new token", next.Body)
	}
	e.f.Expire(providerCorpID)
	if r := e.providerToken(providerCorpID, providerSecret); r.ProviderAccessToken == next.ProviderAccessToken {
		t.Error("after Expire: the ended token again")
	}
	if st := e.f.Stats(providerCorpID); st.ProviderTokenCalls != 5 || st.Issued != 3 {
		t.Errorf("Stats = %+v; want 5 provider token calls, 3 issued", st)
	}
}

func TestSuiteFaultsAndQuota(t *testing.T) {
	e := newSuiteEnv(t, Config{DailyLimit: 2})
	ticket := e.ticket(suiteID)
	e.f.SetFault(suiteID, Fault{ErrCode: codeSystemBusy, Count: 1})
	if r := e.suiteToken(suiteID, "wrong", ticket); r.code() != codeSystemBusy {
		t.Errorf("faulted get_suite_token: %s, want errcode -1 before the secret check", r.Body)
	}
	stok := e.suiteToken(suiteID, suiteSecret, ticket).SuiteAccessToken
	permanent := e.install(stok, suiteID, authCorpID).PermanentCode

	authID := suiteID + "/" + authCorpID
	e.f.SetFault(suiteID, Fault{Status: http.StatusBadGateway})
	e.f.SetFault(authID, Fault{ErrCode: codeMinuteQuota})
	if r := e.corpToken(stok, authCorpID, "wrong"); r.code() != codeMinuteQuota {
		t.Errorf("get_corp_token with the authorization's fault: %s, want errcode %d", r.Body, codeMinuteQuota)
	}
	e.f.ClearFault(authID)
	if r := e.corpToken(stok, authCorpID, permanent); r.Status != http.StatusBadGateway {
		t.Errorf("get_corp_token with the suite's fault: status %d, want 502", r.Status)
	}
	e.f.ClearFault(suiteID)
	if st := e.f.Stats(authID); st.CorpTokenCalls != 2 || st.Issued != 0 {
		t.Errorf("Stats of the authorization = %+v; want 2 faulted calls counted, none issued", st)
	}

	// The fault of a custom app's authorization applies at gettoken.
	ctok := e.suiteAccess(customSuiteID, customSecret)
	custom := e.install(ctok, customSuiteID, authCorpID).PermanentCode
	e.f.SetFault(customSuiteID+"/"+authCorpID, Fault{ErrCode: codeSystemBusy, Count: 1})
	if r := e.wecom(authCorpID, custom); r.ErrCode != codeSystemBusy {
		t.Errorf("faulted custom app gettoken: %s, want errcode -1", r.Body)
	}

	// Two calls a day to get_suite_token: the faulted one did not count.
	if r := e.suiteToken(suiteID, suiteSecret, ticket); r.code() != 0 {
		t.Errorf("second call of the day: %s", r.Body)
	}
	if r := e.suiteToken(suiteID, suiteSecret, ticket); r.code() != codeDailyQuota {
		t.Errorf("third call of the day: %s, want errcode %d", r.Body, codeDailyQuota)
	}
	e.clk.Advance(24 * time.Hour)
	if r := e.suiteToken(suiteID, suiteSecret, e.ticket(suiteID)); r.code() != 0 {
		t.Errorf("next day: %s", r.Body)
	}
}

func TestSuiteString(t *testing.T) {
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(format, testSuite)
		if strings.Contains(got, suiteSecret) || strings.Contains(got, testSuite.Token) ||
			strings.Contains(got, testSuite.EncodingAESKey) || !strings.Contains(got, suiteID) {
			t.Errorf("Sprintf(%q, suite) = %s; want the id and no secret", format, got)
		}
	}
}
