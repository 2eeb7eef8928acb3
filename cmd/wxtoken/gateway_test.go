package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

const (
	gwCorp    = "ww00000000000000c1"
	oaKey     = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	wecomKey  = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	qSecret   = "queue-secret-0123456789"
	botSecret = "bot-secret-0123456789"
)

// received is one delivery a destination took.
type received struct {
	Credential string            `json:"credential"`
	ID         string            `json:"id"`
	ReceivedAt string            `json:"received_at"`
	Message    map[string]string `json:"message"`
	XML        string            `json:"xml"`
	header     http.Header
	raw        []byte
}

// sink is a business server: it records what it acknowledges, and
// refuses with 503 while down.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	down   bool
	slow   time.Duration // the first call waits this long
	reply  string
	calls  int
	got    []received
	events chan received
}

func newSink(t *testing.T) *sink {
	s := &sink{events: make(chan received, 10000)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var rc received
		json.Unmarshal(raw, &rc)
		rc.header, rc.raw = r.Header.Clone(), raw
		s.mu.Lock()
		s.calls++
		down, reply, slow := s.down, s.reply, s.slow
		s.slow = 0
		if !down {
			s.got = append(s.got, rc)
		}
		s.mu.Unlock()
		time.Sleep(slow)
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, reply)
		s.events <- rc
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *sink) count() (calls, got int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, len(s.got)
}

func (s *sink) next(t *testing.T) received {
	t.Helper()
	select {
	case rc := <-s.events:
		return rc
	case <-time.After(60 * time.Second): // past a dead instance's leases
		t.Fatal("nothing delivered within 60s")
		return received{}
	}
}

// checkHMAC verifies a delivery's signature as a destination written in
// any language would: split the header, HMAC-SHA256 "<t>.<body>" with the
// secret, compare in constant time, refuse a stale t.
func checkHMAC(t *testing.T, rc received, secret string) {
	t.Helper()
	var ts, v1 string
	for part := range strings.SplitSeq(rc.header.Get("X-Wxtoken-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Errorf("signature timestamp %q is not fresh", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(append([]byte(ts+"."), rc.raw...))
	got, _ := hex.DecodeString(v1)
	if !hmac.Equal(got, mac.Sum(nil)) {
		t.Errorf("X-Wxtoken-Signature %q does not verify", rc.header.Get("X-Wxtoken-Signature"))
	}
}

// gatewayYAML configures two Official Accounts (plain and safe mode) and
// a WeCom app forwarding to queue and bot; storage is the YAML line that
// places the store.
func gatewayYAML(storage, up, queue, bot string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
%s
upstream: {api: %s, wecom: %s, timeout: 2s}
callbacks: {max_backoff: 100ms}
credentials:
  - id: plain-oa
    kind: mp
    appid: %s
    secret: secret1
    mode: classic
    callback:
      token: plaintoken
      forward:
        - {name: all, to: %s, secret: %s}
  - id: safe-oa
    kind: mp
    appid: %s
    secret: secret2
    callback:
      token: safetoken
      encoding_aes_key: %s
      forward:
        - {name: bot, to: %s, mode: reply, secret: %s, match: {msg_type: [text]}}
        - {name: all, to: %s, secret: %s}
  - id: hr
    kind: wecom
    corpid: %s
    secret: corpsecret
    callback:
      token: QDG6eK
      encoding_aes_key: %s
      forward:
        - {name: all, to: %s, secret: %s, match: {msg_type: [text, event]}}
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, storage, up, up, app1, queue, qSecret, app2, oaKey, bot, botSecret, queue, qSecret, gwCorp, wecomKey, queue, qSecret, clientKey)
}

type gatewayEnv struct {
	m               *Main
	queue, bot      *sink
	plain, safe, hr wxtest.MessageTarget
}

func startGatewayEnv(t *testing.T) *gatewayEnv {
	t.Helper()
	fake, up := upstream(t, wxtest.Config{})
	fake.AddCorp(gwCorp, "corpsecret")
	e := &gatewayEnv{queue: newSink(t), bot: newSink(t)}
	e.m = runYAML(t, gatewayYAML("data_dir: "+t.TempDir(), up, e.queue.URL, e.bot.URL))
	e.plain, e.safe, e.hr = targets(e.m.Addr())
	return e
}

// targets are the callback URLs of gatewayYAML's credentials at addr, as
// WeChat is configured with them.
func targets(addr string) (plain, safe, hr wxtest.MessageTarget) {
	base := "http://" + addr + "/callback/"
	plain = wxtest.MessageTarget{URL: base + "mp/plain-oa", Token: "plaintoken", ReceiveID: app1}
	safe = wxtest.MessageTarget{URL: base + "mp/safe-oa", Token: "safetoken", EncodingAESKey: oaKey, ReceiveID: app2}
	hr = wxtest.MessageTarget{URL: base + "wecom/hr", Token: "QDG6eK", EncodingAESKey: wecomKey, ReceiveID: gwCorp, WeCom: true, AgentID: "1000002"}
	return plain, safe, hr
}

func push(t *testing.T, target wxtest.MessageTarget, msg []byte) wxtest.PushAnswer {
	t.Helper()
	a, err := wxtest.PushMessage(t.Context(), target, msg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGatewayModes: plain and safe mode on an Official Account and WeCom
// reach the queue destination verified, signed, as the contract says;
// the reply rule's answer goes back to WeChat encrypted.
func TestGatewayModes(t *testing.T) {
	e := startGatewayEnv(t)
	now := time.Now()
	const botReply = `<xml><ToUserName><![CDATA[o_a]]></ToUserName><FromUserName><![CDATA[gh_2]]></FromUserName>` +
		`<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello back]]></Content></xml>`
	e.bot.reply = botReply

	// Plain mode.
	if a := push(t, e.plain, wxtest.TextMessage("gh_1", "o_a", "plain hello", 101, now)); a.Status != 200 || string(a.Body) != "success" {
		t.Fatalf("plain push answered %d %q, want 200 success", a.Status, a.Body)
	}
	rc := e.queue.next(t)
	checkHMAC(t, rc, qSecret)
	if rc.Credential != "plain-oa" || rc.ID != "101" || rc.Message["Content"] != "plain hello" || rc.Message["FromUserName"] != "o_a" ||
		rc.header.Get("X-Wxtoken-Credential") != "plain-oa" || rc.header.Get("X-Wxtoken-Delivery") == "" ||
		!strings.Contains(rc.XML, "plain hello") {
		t.Errorf("plain delivery = %s %v", rc.raw, rc.header)
	}

	// Safe mode with a passive reply: WeChat decrypts it with its keys.
	a := push(t, e.safe, wxtest.TextMessage("gh_2", "o_a", "safe hello", 102, now))
	if a.Status != 200 {
		t.Fatalf("safe push answered %d %q", a.Status, a.Body)
	}
	opened, err := e.safe.OpenReply(a.Body)
	if err != nil {
		t.Fatalf("reply %q: %v", a.Body, err)
	}
	if string(opened) != botReply {
		t.Errorf("reply decrypts to %q, want the bot's %q", opened, botReply)
	}
	checkHMAC(t, e.bot.next(t), botSecret)
	// WeChat's unchanged retry gets the same reply, without the bot.
	req, _ := e.safe.Request(t.Context(), wxtest.TextMessage("gh_2", "o_a", "safe again", 104, now))
	body, _ := io.ReadAll(req.Body)
	var replies []string
	for range 2 {
		resp, err := http.Post(req.URL.String(), "text/xml", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		opened, err := e.safe.OpenReply(b)
		if err != nil {
			t.Fatalf("reply %q: %v", b, err)
		}
		replies = append(replies, string(opened))
	}
	if replies[0] != botReply || replies[1] != botReply {
		t.Errorf("a push and its unchanged repeat got %q, want the bot's reply twice", replies)
	}
	e.bot.next(t)
	if rc := e.queue.next(t); rc.ID != "102" {
		t.Errorf("queue got %s, want 102", rc.raw)
	}
	if rc := e.queue.next(t); rc.Credential != "safe-oa" || rc.Message["Content"] != "safe again" {
		t.Errorf("safe delivery = %s", rc.raw)
	}
	if calls, _ := e.bot.count(); calls != 2 {
		t.Errorf("bot asked %d times, want 2 (once per message)", calls)
	}
	// An event matches no reply rule: success, and queued.
	if a := push(t, e.safe, wxtest.EventMessage("gh_2", "o_b", "subscribe", "qrscene_1", now)); string(a.Body) != "success" {
		t.Errorf("event answered %q, want success", a.Body)
	}
	if rc := e.queue.next(t); rc.Message["Event"] != "subscribe" || rc.ID == "" {
		t.Errorf("event delivery = %s", rc.raw)
	}

	// WeCom, always encrypted.
	if a := push(t, e.hr, wxtest.TextMessage(gwCorp, "zhangsan", "wecom hello", 103, now)); string(a.Body) != "success" {
		t.Fatalf("wecom push answered %d %q", a.Status, a.Body)
	}
	if rc := e.queue.next(t); rc.Credential != "hr" || rc.Message["Content"] != "wecom hello" || rc.Message["AgentID"] != "" && rc.Message["ToUserName"] != gwCorp {
		t.Errorf("wecom delivery = %s", rc.raw)
	}
	resp, err := http.Get("http://" + e.m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`wxtoken_gateway_messages_total{credential="plain-oa",result="queued"} 1`,
		`wxtoken_gateway_replies_total{credential="safe-oa",result="cached"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestGatewayRetriedPushOnce: the reply destination is slower than
// WeChat's patience, so WeChat sends the push again; the queue
// destination gets it once.
func TestGatewayRetriedPushOnce(t *testing.T) {
	e := startGatewayEnv(t)
	e.bot.slow = 1500 * time.Millisecond
	e.safe.Wait = 500 * time.Millisecond
	a := push(t, e.safe, wxtest.TextMessage("gh_2", "o_a", "retried", 201, time.Now()))
	if a.Attempts < 2 || a.Status != 200 {
		t.Fatalf("push took %d attempts, answer %d; want WeChat to have retried, then succeeded", a.Attempts, a.Status)
	}
	if rc := e.queue.next(t); rc.ID != "201" {
		t.Fatalf("delivered %s", rc.raw)
	}
	// A later message is delivered next: the retries were not.
	push(t, e.plain, wxtest.TextMessage("gh_1", "o_a", "after", 202, time.Now()))
	if rc := e.queue.next(t); rc.ID != "202" {
		t.Errorf("after a retried push, delivered %s; want message 202", rc.raw)
	}
	if _, got := e.queue.count(); got != 2 {
		t.Errorf("queue destination took %d deliveries, want 2", got)
	}
	if calls, _ := e.bot.count(); calls != 1 {
		t.Errorf("reply destination asked %d times, want once", calls)
	}
}

// TestGatewayBadInput: what fails the checks is refused, and nothing is
// stored or delivered.
func TestGatewayBadInput(t *testing.T) {
	e := startGatewayEnv(t)
	ctx := context.Background()
	send := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	msg := wxtest.TextMessage("gh_1", "o_a", "x", 301, time.Now())

	// A bad signature, in plain and safe mode.
	wrong := e.plain
	wrong.Token = "not-the-token"
	wrongSafe := e.safe
	wrongSafe.Token = "not-the-token"
	// An unknown route.
	unknown := e.plain
	unknown.URL = strings.Replace(e.plain.URL, "plain-oa", "nobody", 1)
	for name, target := range map[string]wxtest.MessageTarget{"bad signature": wrong, "bad safe signature": wrongSafe, "unknown route": unknown} {
		req, _ := target.Request(ctx, msg)
		if status := send(req); status == 200 {
			t.Errorf("%s: answered 200", name)
		}
	}
	// Oversize XML, correctly signed.
	big := wxtest.TextMessage("gh_1", "o_a", strings.Repeat("x", 2<<20), 302, time.Now())
	req, _ := e.plain.Request(ctx, big)
	if status := send(req); status == 200 {
		t.Error("oversize push: answered 200")
	}
	// Not a message, correctly signed.
	req, _ = e.plain.Request(ctx, []byte("<xml><Content>no type</Content></xml>"))
	if status := send(req); status != http.StatusBadRequest {
		t.Errorf("push without MsgType: answered %d, want 400", status)
	}
	// A replay: the same request twice. It may be WeChat retrying
	// unchanged, so it is answered as the first was, and stores nothing.
	req, _ = e.plain.Request(ctx, wxtest.TextMessage("gh_1", "o_a", "once", 303, time.Now()))
	body, _ := io.ReadAll(req.Body)
	for i := range 3 {
		again, _ := http.NewRequest("POST", req.URL.String(), bytes.NewReader(body))
		if status := send(again); status != 200 {
			t.Errorf("push %d of the same request answered %d, want 200", i, status)
		}
	}
	if rc := e.queue.next(t); rc.ID != "303" {
		t.Errorf("delivered %s, want only the original push 303", rc.raw)
	}
	// Nothing else arrives: a last good push is the next delivery.
	push(t, e.plain, wxtest.TextMessage("gh_1", "o_a", "last", 304, time.Now()))
	if rc := e.queue.next(t); rc.ID != "304" {
		t.Errorf("delivered %s, want 304", rc.raw)
	}
	if calls, _ := e.queue.count(); calls != 2 {
		t.Errorf("queue destination called %d times, want 2", calls)
	}
	// Delivered entries leave the queue once acknowledged (the ids
	// remembered against retries are claims, which List does not see).
	var keys []string
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if keys, err = e.m.store.List(ctx, "gw/"); err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 || time.Now().After(end) {
			break
		}
	}
	for _, k := range keys {
		t.Errorf("left in the store: %s", k)
	}
}

// pushMany pushes n text messages, spread over three users, to target,
// numbered from first; WeChat gets its answer for each before the next.
func pushMany(t *testing.T, target wxtest.MessageTarget, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		a := push(t, target, wxtest.TextMessage("gh_1", fmt.Sprintf("o_%d", i%3), strconv.Itoa(i), int64(i), time.Now()))
		if a.Status != 200 || string(a.Body) != "success" {
			t.Fatalf("push %d answered %d %q", i, a.Status, a.Body)
		}
	}
}

// collect takes deliveries until n distinct messages came, and checks
// that each user's came in the order pushed and, unless again, that none
// came twice. It returns how many came again.
func collect(t *testing.T, s *sink, n int, again bool) (dups int) {
	t.Helper()
	seen := map[int]bool{}
	last := map[string]int{}
	for len(seen) < n {
		rc := s.next(t)
		id, _ := strconv.Atoi(rc.ID)
		if seen[id] {
			dups++
			if !again {
				t.Errorf("message %d delivered twice", id)
			}
		}
		seen[id] = true
		u := rc.Message["FromUserName"]
		if id < last[u] {
			t.Errorf("user %s: message %d delivered after %d", u, id, last[u])
		}
		last[u] = id
	}
	return dups
}

// TestGatewayDestinationDown: a destination refuses everything for a
// while; once back it gets every message, once, in order per user.
func TestGatewayDestinationDown(t *testing.T) {
	e := startGatewayEnv(t)
	e.queue.setDown(true)
	pushMany(t, e.plain, 1, 30)
	for calls, _ := e.queue.count(); calls < 10; calls, _ = e.queue.count() {
		time.Sleep(10 * time.Millisecond) // until it has refused some
	}
	e.queue.setDown(false)
	collect(t, e.queue, 30, false)
	if _, got := e.queue.count(); got != 30 {
		t.Errorf("destination acknowledged %d deliveries, want 30", got)
	}
}
