package gateway

import (
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
)

const secret = "0123456789abcdef-secret"

// delivery is what a destination received.
type delivery struct {
	Header http.Header
	Body   payload
	Raw    []byte
}

// destination is a real HTTP destination whose answer a test sets.
type destination struct {
	*httptest.Server
	mu     sync.Mutex
	status int    // answer; 0 means 200
	reply  string // body of a 200
	got    []delivery
	calls  int
	events chan delivery
}

func newDestination(t *testing.T) *destination {
	d := &destination{events: make(chan delivery, 1000)}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var p payload
		json.Unmarshal(raw, &p)
		dv := delivery{Header: r.Header.Clone(), Body: p, Raw: raw}
		d.mu.Lock()
		d.calls++
		status, reply := d.status, d.reply
		if status == 0 || status == 200 {
			d.got = append(d.got, dv)
		}
		d.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
		io.WriteString(w, reply)
		if status == 0 || status == 200 {
			d.events <- dv
		}
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *destination) set(status int, reply string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status, d.reply = status, reply
}

func (d *destination) wait(t *testing.T) delivery {
	t.Helper()
	select {
	case dv := <-d.events:
		return dv
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
		return delivery{}
	}
}

// verify checks the signature the way a destination would, written from
// the contract and not with Sign.
func verify(t *testing.T, dv delivery, secret string) {
	t.Helper()
	sig := dv.Header.Get("X-Wxtoken-Signature")
	parts := strings.Split(sig, ",")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "t=") || !strings.HasPrefix(parts[1], "v1=") {
		t.Fatalf("signature header %q: want t=..,v1=..", sig)
	}
	ts := strings.TrimPrefix(parts[0], "t=")
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("signature time %q is not now", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(dv.Raw)))
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(strings.TrimPrefix(parts[1], "v1=")), []byte(want)) {
		t.Errorf("signature %s does not verify", sig)
	}
}

func text(user, content string, id int) []byte {
	return fmt.Appendf(nil, `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName>`+
		`<CreateTime>%d</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId></xml>`,
		user, 1700000000+id, content, id)
}

func newGateway(t *testing.T, st store.Store, cfg Config, rules ...config.Forward) *Gateway {
	t.Helper()
	cfg.Store = st
	cfg.Routes = map[string][]Rule{}
	for _, f := range rules {
		cfg.Routes["shop-oa"] = append(cfg.Routes["shop-oa"], Rule{f})
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestQueueDelivers(t *testing.T) {
	d := newDestination(t)
	other := newDestination(t)
	g := newGateway(t, memory.New(), Config{},
		config.Forward{Name: "all", To: d.URL, Secret: secret},
		config.Forward{Name: "events", To: other.URL, Secret: secret, Match: config.Match{MsgType: []string{"event"}}})
	ctx := context.Background()
	reply, err := g.Receive(ctx, "shop-oa", "", text("o_a", "hello", 1))
	if err != nil || reply != nil {
		t.Fatalf("Receive = %q, %v; want no reply, nil", reply, err)
	}
	dv := d.wait(t)
	verify(t, dv, secret)
	if dv.Header.Get("X-Wxtoken-Credential") != "shop-oa" || dv.Header.Get("X-Wxtoken-Delivery") == "" ||
		dv.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", dv.Header)
	}
	p := dv.Body
	if p.Credential != "shop-oa" || p.ID != "1" || p.Message["Content"] != "hello" || p.Message["FromUserName"] != "o_a" ||
		!strings.HasPrefix(p.XML, "<xml>") {
		t.Errorf("body = %s", dv.Raw)
	}
	if _, err := time.Parse(time.RFC3339, p.ReceivedAt); err != nil {
		t.Errorf("received_at %q: %v", p.ReceivedAt, err)
	}
	if verifyFails(dv, "another-secret-0123") == false {
		t.Error("a wrong secret verifies")
	}
	// WeChat's retry of the same message is accepted and not delivered
	// again; the next message is.
	if _, err := g.Receive(ctx, "shop-oa", "", text("o_a", "hello", 1)); err != nil {
		t.Fatal(err)
	}
	g.Receive(ctx, "shop-oa", "", text("o_a", "next", 2))
	if got := d.wait(t); got.Body.ID != "2" {
		t.Errorf("after a retried push, delivered %s; want message 2 only", got.Body.ID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	other.mu.Lock()
	defer other.mu.Unlock()
	if d.calls != 2 || other.calls != 0 {
		t.Errorf("calls = %d and %d; want 2 to the matching rule and none to the other", d.calls, other.calls)
	}
}

func verifyFails(dv delivery, secret string) bool {
	sig := dv.Header.Get("X-Wxtoken-Signature")
	ts := strings.TrimPrefix(strings.Split(sig, ",")[0], "t=")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(dv.Raw)))
	return !strings.HasSuffix(sig, hex.EncodeToString(mac.Sum(nil)))
}

// TestQueueOrderAcrossOutage: a destination down for a while gets every
// message once back, and each user's in the order received.
func TestQueueOrderAcrossOutage(t *testing.T) {
	d := newDestination(t)
	d.set(503, "")
	g := newGateway(t, memory.New(), Config{MaxBackoff: 20 * time.Millisecond, Poll: 10 * time.Millisecond},
		config.Forward{Name: "all", To: d.URL, Secret: secret})
	ctx := context.Background()
	const n = 20
	for i := 1; i <= n; i++ {
		user := []string{"o_a", "o_b"}[i%2]
		if _, err := g.Receive(ctx, "shop-oa", "", text(user, "m", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the destination was tried and refused a few times.
	for {
		d.mu.Lock()
		calls := d.calls
		d.mu.Unlock()
		if calls >= 5 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.set(0, "")
	last := map[string]int{}
	seen := map[string]bool{}
	for range n {
		dv := d.wait(t)
		id, _ := strconv.Atoi(dv.Body.ID)
		u := dv.Body.Message["FromUserName"]
		if seen[dv.Body.ID] {
			t.Errorf("message %d delivered twice", id)
		}
		seen[dv.Body.ID] = true
		if id < last[u] {
			t.Errorf("user %s: message %d after %d", u, id, last[u])
		}
		last[u] = id
	}
	if len(seen) != n {
		t.Errorf("delivered %d distinct messages, want %d", len(seen), n)
	}
}

func TestDeadLetterAndRedrive(t *testing.T) {
	d := newDestination(t)
	d.set(500, "")
	st := memory.New()
	g := newGateway(t, st, Config{MaxBackoff: 5 * time.Millisecond, DeadAfter: time.Nanosecond, Poll: 5 * time.Millisecond},
		config.Forward{Name: "all", To: d.URL, Secret: secret})
	ctx := context.Background()
	g.Receive(ctx, "shop-oa", "", text("o_a", "m", 7))
	var dead []DeadLetter
	for len(dead) == 0 {
		var err error
		if dead, err = g.DeadLetters(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if dl := dead[0]; dl.Credential != "shop-oa" || dl.Rule != "all" || dl.MessageID != "7" || dl.Attempts != 1 ||
		!strings.Contains(dl.LastError, "500") || strings.Contains(dl.ID, "/") {
		t.Errorf("dead letter = %+v", dl)
	}
	if keys, _ := st.List(ctx, queuePrefix); len(keys) != 0 {
		t.Errorf("queue after dead letter = %v, want empty", keys)
	}
	if err := g.Redrive(ctx, "nope"); err != ErrNoDeadLetter {
		t.Errorf("Redrive(unknown) = %v, want ErrNoDeadLetter", err)
	}
	d.set(0, "")
	if err := g.Redrive(ctx, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	if dv := d.wait(t); dv.Body.ID != "7" {
		t.Errorf("re-driven delivery = %s", dv.Raw)
	}
	if left, _ := g.DeadLetters(ctx); len(left) != 0 {
		t.Errorf("dead letters after re-drive = %v", left)
	}
}

func TestReply(t *testing.T) {
	bot := newDestination(t)
	const answer = `<xml><ToUserName><![CDATA[o_a]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>`
	bot.set(200, answer)
	log := newDestination(t)
	g := newGateway(t, memory.New(), Config{},
		config.Forward{Name: "bot", To: bot.URL, Secret: secret, Mode: config.ForwardReply, Match: config.Match{MsgType: []string{"text"}}},
		config.Forward{Name: "log", To: log.URL, Secret: "another-secret-0123"})
	ctx := context.Background()
	reply, err := g.Receive(ctx, "shop-oa", "", text("o_a", "hello", 1))
	if err != nil || string(reply) != answer {
		t.Fatalf("Receive = %q, %v; want the bot's answer", reply, err)
	}
	verify(t, bot.wait(t), secret)
	verify(t, log.wait(t), "another-secret-0123")
	// WeChat's retry gets the same reply, and the bot is not asked again.
	if again, _ := g.Receive(ctx, "shop-oa", "", text("o_a", "hello", 1)); string(again) != answer {
		t.Errorf("retried push answered %q, want the reply given", again)
	}
	for _, tc := range []struct {
		status int
		body   string
	}{{200, "success"}, {200, ""}, {500, answer}} {
		bot.set(tc.status, tc.body)
		id := tc.status + len(tc.body)
		if reply, err := g.Receive(ctx, "shop-oa", "", text("o_a", "x", id)); err != nil || reply != nil {
			t.Errorf("bot answering %d %q: Receive = %q, %v; want no reply", tc.status, tc.body, reply, err)
		}
	}
	bot.mu.Lock()
	defer bot.mu.Unlock()
	if bot.calls != 4 {
		t.Errorf("bot calls = %d, want 4 (one per distinct message)", bot.calls)
	}
}

func TestReplyTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	g := newGateway(t, memory.New(), Config{},
		config.Forward{Name: "bot", To: slow.URL, Secret: secret, Mode: config.ForwardReply, Timeout: 50 * time.Millisecond})
	if reply, err := g.Receive(context.Background(), "shop-oa", "", text("o_a", "x", 1)); err != nil || reply != nil {
		t.Errorf("Receive = %q, %v; want no reply after the timeout", reply, err)
	}
}

func TestReceiveBad(t *testing.T) {
	st := memory.New()
	g := newGateway(t, st, Config{}, config.Forward{Name: "all", To: "http://127.0.0.1:1/", Secret: secret})
	if _, err := g.Receive(context.Background(), "shop-oa", "", []byte("<xml><Content>x</Content></xml>")); err == nil {
		t.Error("a plaintext without MsgType was accepted")
	}
	if keys, _ := st.List(context.Background(), "gw/"); len(keys) != 0 {
		t.Errorf("store after bad input = %v, want nothing", keys)
	}
}

// TestAuthorizersApart: a platform's authorizers have their own users and
// message ids: the same MsgId for two authorizers is two messages, each
// delivered as its authorizer's, and a rule naming an authorizer takes
// only its messages.
func TestAuthorizersApart(t *testing.T) {
	all, one := newDestination(t), newDestination(t)
	g := newGateway(t, memory.New(), Config{},
		config.Forward{Name: "all", To: all.URL, Secret: secret},
		config.Forward{Name: "one", To: one.URL, Secret: secret, Match: config.Match{Authorizer: []string{"wxauth1"}}})
	ctx := context.Background()
	for _, a := range []string{"wxauth1", "wxauth2"} {
		if _, err := g.Receive(ctx, "shop-oa", a, text("o_a", a, 9)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for range 2 {
		dv := all.wait(t)
		got[dv.Header.Get(HeaderCredential)] = dv.Body.Message["Content"]
		if dv.Body.Credential != dv.Header.Get(HeaderCredential) {
			t.Errorf("body credential %q, header %q", dv.Body.Credential, dv.Header.Get(HeaderCredential))
		}
	}
	if got["shop-oa/wxauth1"] != "wxauth1" || got["shop-oa/wxauth2"] != "wxauth2" {
		t.Errorf("deliveries by credential = %v, want one per authorizer", got)
	}
	if dv := one.wait(t); dv.Body.Credential != "shop-oa/wxauth1" {
		t.Errorf("authorizer rule got %s", dv.Raw)
	}
	one.mu.Lock()
	defer one.mu.Unlock()
	if one.calls != 1 {
		t.Errorf("authorizer rule called %d times, want 1", one.calls)
	}
}

// TestMetrics counts what Receive and the delivery loop did.
func TestMetrics(t *testing.T) {
	d := newDestination(t)
	bot := newDestination(t)
	bot.set(200, "<xml><Content>hi</Content></xml>")
	reg := prometheus.NewRegistry()
	g := newGateway(t, memory.New(), Config{Registerer: reg},
		config.Forward{Name: "all", To: d.URL, Secret: secret},
		config.Forward{Name: "bot", To: bot.URL, Secret: secret, Mode: config.ForwardReply})
	ctx := context.Background()
	g.Receive(ctx, "shop-oa", "", text("o_a", "m", 1))
	g.Receive(ctx, "shop-oa", "", text("o_a", "m", 1))
	d.wait(t)
	// value is the counter of name whose labels are all of want.
	value := func(name string, want ...string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				var got []string
				for _, l := range m.GetLabel() {
					got = append(got, l.GetValue())
				}
				if strings.Join(got, ",") == strings.Join(want, ",") {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	for end := time.Now().Add(10 * time.Second); value("wxtoken_gateway_deliveries_total", "shop-oa", "ok", "all") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("delivery not counted")
		}
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wxtoken_gateway_messages_total", []string{"shop-oa", "queued"}, 1},
		{"wxtoken_gateway_messages_total", []string{"shop-oa", "duplicate"}, 1},
		{"wxtoken_gateway_replies_total", []string{"shop-oa", "reply"}, 1},
		{"wxtoken_gateway_replies_total", []string{"shop-oa", "cached"}, 1},
		{"wxtoken_gateway_deliveries_total", []string{"shop-oa", "ok", "all"}, 1},
	} {
		if got := value(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// TestCrashBeforeQueued: a first delivery that claimed the message and
// died before its queue entries were written (its claim is all the store
// holds) does not make WeChat's retry a duplicate: the retry is queued
// and delivered. A retry after the entries were written is not.
func TestCrashBeforeQueued(t *testing.T) {
	d := newDestination(t)
	st := memory.New()
	g := newGateway(t, st, Config{}, config.Forward{Name: "all", To: d.URL, Secret: secret})
	ctx := context.Background()
	m, err := Parse(text("o_a", "lost?", 5))
	if err != nil {
		t.Fatal(err)
	}
	// What the crashed attempt left: the message's id claimed, nothing queued.
	if ok, err := st.Claim(ctx, "gw/seen/shop-oa/"+digest(m.key()), time.Hour); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, err := g.Receive(ctx, "shop-oa", "", text("o_a", "lost?", 5)); err != nil {
		t.Fatal(err)
	}
	if got := d.wait(t); got.Body.ID != "5" || got.Body.Message["Content"] != "lost?" {
		t.Fatalf("delivered %s, want message 5", got.Raw)
	}
	// WeChat's next retry: queued by now, so not again.
	if _, err := g.Receive(ctx, "shop-oa", "", text("o_a", "lost?", 5)); err != nil {
		t.Fatal(err)
	}
	g.Receive(ctx, "shop-oa", "", text("o_a", "after", 6))
	if got := d.wait(t); got.Body.ID != "6" {
		t.Errorf("after the retry, delivered %s; want message 6 only", got.Body.ID)
	}
}
