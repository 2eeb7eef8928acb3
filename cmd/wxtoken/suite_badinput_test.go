package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/wxtest"
)

// suitePlain is the plaintext of a suite push from suiteID: InfoType and
// TimeStamp (now), then the other elements in order, name and value
// pairs, as CDATA.
func suitePlain(suiteID, infoType string, elems ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<xml><SuiteId><![CDATA[%s]]></SuiteId><InfoType><![CDATA[%s]]></InfoType><TimeStamp>%d</TimeStamp>",
		suiteID, infoType, time.Now().Unix())
	for i := 0; i+1 < len(elems); i += 2 {
		fmt.Fprintf(&b, "<%s><![CDATA[%s]]></%[1]s>", elems[i], elems[i+1])
	}
	b.WriteString("</xml>")
	return []byte(b.String())
}

// suiteSealedPost POSTs plain to the instance's path as WeCom would, sealed
// by c and signed with token at ts, and returns the answer.
func suiteSealedPost(t *testing.T, addr, path string, c *callback.Crypter, token string, ts time.Time, plain []byte) (int, string) {
	t.Helper()
	stamp, nonce := strconv.FormatInt(ts.Unix(), 10), strconv.FormatInt(time.Now().UnixNano(), 10)
	body, sig, err := c.SealRequest(callback.Recipient{ToUserName: suiteApp.SuiteID}, plain, stamp, nonce)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"msg_signature": {sig}, "timestamp": {stamp}, "nonce": {nonce}}
	resp, err := http.Post("http://"+addr+path+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// suiteStoredTicket is the suite's stored suite_ticket record, as stored.
func suiteStoredTicket(t *testing.T, m *Main, suiteID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ent, err := m.store.Get(ctx, "ticket/"+suiteID)
	if err != nil {
		t.Fatalf("stored ticket of %s: %v", suiteID, err)
	}
	return string(ent.Value)
}

// TestSuiteCallbackBadInput: what fails the checks of a suite's command
// callback is refused with a 4xx or 5xx and the API's error shape, never
// "success" (WeCom takes that as delivered and does not send it again),
// and changes nothing: the stored suite_ticket, the suite's token and its
// corps stay as they were.
func TestSuiteCallbackBadInput(t *testing.T) {
	e := suiteStart(t, wxtest.Config{})
	ctx := t.Context()
	s := suiteApp
	path := "/callback/suite/" + s.SuiteID
	rec := &recorder{}
	e.suitePushTo(s, &http.Client{Transport: rec})
	if _, err := e.fake.PushSuiteTicket(ctx, s.SuiteID); err != nil {
		t.Fatalf("first ticket push: %v", err)
	}
	firstPush := rec.last()
	awaitToken(t, e.hc, e.addr, s.SuiteID, 20*time.Millisecond, 5*time.Second, nil)
	// The newest ticket is the one to keep; the first push, replayed,
	// would put back the older one (both may carry the same TimeStamp
	// second, which alone does not tell them apart).
	newest, err := e.fake.PushSuiteTicket(ctx, s.SuiteID)
	if err != nil {
		t.Fatalf("second ticket push: %v", err)
	}
	ticket := suiteStoredTicket(t, e.m, s.SuiteID)
	if !strings.Contains(ticket, newest) {
		t.Fatalf("stored %s, want the newest suite_ticket", ticket)
	}
	suiteToken := awaitToken(t, e.hc, e.addr, s.SuiteID, 20*time.Millisecond, 5*time.Second, nil).AccessToken
	before := e.fake.Stats(s.SuiteID)

	good, err := callback.NewCrypter(s.Token, s.EncodingAESKey, s.SuiteID)
	if err != nil {
		t.Fatal(err)
	}
	// Sealed with the suite's keys for another receive id: a suite of
	// another provider's that shares them, or a corp's data callback.
	otherReceiver, err := callback.NewCrypter(s.Token, s.EncodingAESKey, "ww5e17e00000000099")
	if err != nil {
		t.Fatal(err)
	}
	forged := suitePlain(s.SuiteID, callback.InfoSuiteTicket, "SuiteTicket", "forged-ticket")
	raw := func(plain []byte, tamper func(*http.Request)) func() (int, string) {
		return func() (int, string) {
			status, body, err := e.fake.PushSuiteRaw(ctx, s.SuiteID, plain, tamper)
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			return status, body
		}
	}
	setQuery := func(k, v string) func(*http.Request) {
		return func(r *http.Request) {
			q := r.URL.Query()
			q.Set(k, v)
			r.URL.RawQuery = q.Encode()
		}
	}
	get := func(q url.Values) func() (int, string) {
		return func() (int, string) { return suiteGet(t, "http://"+e.addr+path+"?"+q.Encode()) }
	}
	cases := []struct {
		name   string
		send   func() (int, string)
		status int
		code   string // the error's code
		says   string // in its message
	}{
		{"bad msg_signature", raw(forged, setQuery("msg_signature", strings.Repeat("0", 40))), 401, "bad_signature", "msg_signature"},
		{"stale timestamp", func() (int, string) {
			return suiteSealedPost(t, e.addr, path, good, s.Token, time.Now().Add(-time.Hour), forged)
		}, 400, "stale_timestamp", "timestamp"},
		{"timestamp in the future", func() (int, string) {
			return suiteSealedPost(t, e.addr, path, good, s.Token, time.Now().Add(time.Hour), forged)
		}, 400, "stale_timestamp", "timestamp"},
		{"replayed push", func() (int, string) { return firstPush.replay(t, e.addr) }, 409, "replayed", "replayed"},
		{"malformed XML plaintext", raw([]byte("<xml><SuiteId>"+s.SuiteID+"</SuiteId><InfoType>suite_ticket"), nil), 400, "bad_message", "XML"},
		{"oversized body", raw(suitePlain(s.SuiteID, callback.InfoSuiteTicket, "SuiteTicket", strings.Repeat("x", callback.MaxBodySize)), nil),
			413, "too_large", "bytes"},
		{"sealed for another receive id", func() (int, string) {
			return suiteSealedPost(t, e.addr, path, otherReceiver, s.Token, time.Now(), forged)
		}, 400, "bad_message", "receive"},
		{"SuiteId of another suite", raw(suitePlain(suiteCustomApp.SuiteID, callback.InfoSuiteTicket, "SuiteTicket", "forged-ticket"), nil),
			400, "bad_message", suiteCustomApp.SuiteID},
		{"unknown suite in the path", raw(forged, func(r *http.Request) { r.URL.Path = "/callback/suite/ww5e17e00000000099" }),
			404, "not_found", "no such endpoint"},
		{"create_auth with a code WeCom does not know", raw(suitePlain(s.SuiteID, callback.InfoCreateAuth, "AuthCode", "authcode@@@never-issued"), nil),
			502, "upstream_error", "authorization code: wechat: errcode 40078"},
		{"create_auth without AuthCode", raw(suitePlain(s.SuiteID, callback.InfoCreateAuth, "State", ""), nil), 400, "bad_message", "AuthCode"},
		{"cancel_auth without AuthCorpId", raw(suitePlain(s.SuiteID, callback.InfoCancelAuth), nil), 400, "bad_message", "AuthCorpId"},
		{"suite_ticket without SuiteTicket", raw(suitePlain(s.SuiteID, callback.InfoSuiteTicket), nil), 400, "bad_message", "SuiteTicket"},
		{"suite_ticket without SuiteId", raw(suitePlain("", callback.InfoSuiteTicket, "SuiteTicket", "forged-ticket"), nil), 400, "bad_message", "SuiteId"},
		{"verification with a wrong signature", get(suiteVerifyQuery(t, good, "not-the-token", time.Now(), "1616140317555161061")),
			401, "bad_signature", "echostr"},
		{"verification with a stale timestamp", get(suiteVerifyQuery(t, good, s.Token, time.Now().Add(-time.Hour), "1616140317555161061")),
			400, "stale_timestamp", "timestamp"},
		// A push is signed as a verification is: its ciphertext, sent as
		// echostr with its own query, must not have its ticket answered.
		{"verification with a recorded push's ciphertext", get(suiteEchoOf(t, firstPush)), 400, "bad_message", "echo string"},
	}
	for _, c := range cases {
		status, body := c.send()
		var out struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal([]byte(body), &out)
		if status != c.status || out.Error.Code != c.code || !strings.Contains(out.Error.Message, c.says) {
			t.Errorf("%s: %d %.200s; want %d %s saying %q", c.name, status, body, c.status, c.code, c.says)
		}
		if strings.Contains(body, "<xml>") {
			t.Errorf("%s: a plaintext was answered: %.200s", c.name, body)
		}
		if got := suiteStoredTicket(t, e.m, s.SuiteID); got != ticket {
			t.Errorf("%s: the stored suite_ticket changed: %s, was %s", c.name, got, ticket)
		}
	}

	// Nothing changed: the suite's token is the one it had, fetched no
	// more, and it has no corp.
	// Of all the pushes, only the create_auth with a code WeCom does not
	// know reached WeCom, to have the code refused.
	after := e.fake.Stats(s.SuiteID)
	if after.SuiteTokenCalls != before.SuiteTokenCalls || after.PermanentCodeCalls != before.PermanentCodeCalls+1 {
		t.Errorf("get_suite_token calls %d → %d, get_permanent_code %d → %d; want no token fetched and the one unknown code tried",
			before.SuiteTokenCalls, after.SuiteTokenCalls, before.PermanentCodeCalls, after.PermanentCodeCalls)
	}
	if status, tr, err := askToken(ctx, e.hc, e.addr, s.SuiteID); err != nil || status != 200 || tr.AccessToken != suiteToken {
		t.Errorf("the suite's token after the bad pushes: %d %v, changed: %v", status, err, tr.AccessToken != suiteToken)
	}
	var page authorizerPage
	status, body := keyCall(t, e.addr, "GET", "/v1/components/"+s.SuiteID+"/authorizers", clientKey, "")
	if status != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.Authorizers) != 0 {
		t.Errorf("the suite's corps after the bad pushes: %d %s, want none", status, body)
	}
}

// suiteEchoOf is the query of a URL verification that replays the recorded
// push p: its timestamp, nonce and msg_signature, and its Encrypt value as
// echostr.
func suiteEchoOf(t *testing.T, p recorded) url.Values {
	t.Helper()
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Encrypt string }
	if err := xml.Unmarshal(p.body, &env); err != nil || env.Encrypt == "" {
		t.Fatalf("recorded push %s: %v", p.body, err)
	}
	q := u.Query()
	q.Set("echostr", env.Encrypt)
	return q
}
