package wxtest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/callback"
)

// receiver is a component's authorization-event URL as a token server
// serves it, written from WECHAT.md §5 rather than from the fake: it checks
// the signatures and the envelope itself, decrypts with its own Crypter and
// answers "success". It refuses anything else with 400 and notes why.
type receiver struct {
	comp    Component
	crypter *callback.Crypter
	got     chan struct{} // a token per request, for waiting on pushes

	mu      sync.Mutex
	events  []callback.Event
	refused []error
	answer  func(http.ResponseWriter) // nil: "success"
}

func newReceiver(c Component) *receiver {
	crypter, err := callback.NewCrypter(c.Token, c.EncodingAESKey, c.AppID)
	if err != nil {
		panic(err) // the test components are constants
	}
	return &receiver{comp: c, crypter: crypter, got: make(chan struct{}, 1000)}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev, err := rc.open(w, r)
	rc.mu.Lock()
	if err != nil {
		rc.refused = append(rc.refused, err)
	} else {
		rc.events = append(rc.events, ev)
	}
	answer := rc.answer
	rc.mu.Unlock()
	select {
	case rc.got <- struct{}{}:
	default:
	}
	switch {
	case err != nil:
		http.Error(w, "refused: "+err.Error(), http.StatusBadRequest)
	case answer != nil:
		answer(w)
	default:
		io.WriteString(w, "success")
	}
}

// open checks one push and returns its event.
func (rc *receiver) open(w http.ResponseWriter, r *http.Request) (callback.Event, error) {
	if r.Method != http.MethodPost {
		return callback.Event{}, fmt.Errorf("method %s", r.Method)
	}
	q := r.URL.Query()
	ts, nonce, msgSignature := q.Get("timestamp"), q.Get("nonce"), q.Get("msg_signature")
	if q.Get("encrypt_type") != "aes" {
		return callback.Event{}, fmt.Errorf("encrypt_type %q", q.Get("encrypt_type"))
	}
	if !callback.VerifySignature(rc.comp.Token, ts, nonce, q.Get("signature")) {
		return callback.Event{}, errors.New("signature does not match")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, callback.MaxBodySize))
	if err != nil {
		return callback.Event{}, err
	}
	var env struct {
		AppID   string `xml:"AppId"`
		Encrypt string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return callback.Event{}, fmt.Errorf("envelope: %w", err)
	}
	if env.AppID != rc.comp.AppID {
		return callback.Event{}, fmt.Errorf("envelope AppId %q", env.AppID)
	}
	if callback.MsgSignature(rc.comp.Token, ts, nonce, env.Encrypt) != msgSignature {
		return callback.Event{}, errors.New("msg_signature does not match")
	}
	plain, err := rc.crypter.DecryptMessage(msgSignature, ts, nonce, body)
	if err != nil {
		return callback.Event{}, err
	}
	ev, err := callback.ParseEvent(plain)
	if err != nil {
		return callback.Event{}, err
	}
	if ev.AppID != rc.comp.AppID || strconv.FormatInt(ev.CreateTime, 10) != ts {
		return callback.Event{}, fmt.Errorf("event AppId %q CreateTime %d, query timestamp %s", ev.AppID, ev.CreateTime, ts)
	}
	return ev, nil
}

// all returns the events received so far.
func (rc *receiver) all() []callback.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.events)
}

// last returns the newest event, or a zero one.
func (rc *receiver) last() callback.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.events) == 0 {
		return callback.Event{}
	}
	return rc.events[len(rc.events)-1]
}

func (rc *receiver) refusals() []error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.refused)
}

func (rc *receiver) setAnswer(fn func(http.ResponseWriter)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = fn
}

// wait returns once n events have arrived, and fails the test after 10 s.
func (rc *receiver) wait(t *testing.T, n int) []callback.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if evs := rc.all(); len(evs) >= n {
			return evs
		}
		select {
		case <-rc.got:
		case <-deadline:
			t.Fatalf("waited 10 s for %d pushes; got %d, refused %v", n, len(rc.all()), rc.refusals())
		}
	}
}

// waitFor polls cond until it holds, and fails the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
	}
}

// TestPushFormat checks a ticket push byte by byte against WECHAT.md §5,
// without the receiver's help.
func TestPushFormat(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.AddComponent(testComponent)
	type capture struct {
		r    *http.Request
		body []byte
	}
	captured := make(chan capture, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(err)
		}
		captured <- capture{r, body}
		io.WriteString(w, "success")
	}))
	defer ts.Close()
	e.f.SetPushTarget(componentAppID, ts.URL+"/push?platform=1", nil)

	ticket, err := e.f.PushTicket(context.Background(), componentAppID)
	if err != nil {
		t.Fatal(err)
	}
	c := <-captured
	got, body := c.r, c.body
	if got.Method != http.MethodPost || got.URL.Path != "/push" || got.Header.Get("Content-Type") != "text/xml" {
		t.Errorf("request: %s %s, Content-Type %q", got.Method, got.URL.Path, got.Header.Get("Content-Type"))
	}
	q := got.URL.Query()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"encrypt_type", "msg_signature", "nonce", "platform", "signature", "timestamp"}; !slices.Equal(keys, want) {
		t.Errorf("query keys %v, want %v", keys, want)
	}
	stamp, nonce := q.Get("timestamp"), q.Get("nonce")
	if stamp != strconv.FormatInt(morning.Unix(), 10) || nonce == "" || q.Get("encrypt_type") != "aes" {
		t.Errorf("timestamp %q nonce %q encrypt_type %q", stamp, nonce, q.Get("encrypt_type"))
	}
	if want := callback.Signature(testComponent.Token, stamp, nonce); q.Get("signature") != want {
		t.Errorf("signature %q, want %q", q.Get("signature"), want)
	}

	var env struct {
		XMLName    xml.Name
		AppID      string  `xml:"AppId"`
		ToUserName *string `xml:"ToUserName"`
		Encrypt    string  `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		t.Fatalf("envelope %s: %v", body, err)
	}
	if env.XMLName.Local != "xml" || env.AppID != componentAppID || env.ToUserName != nil || env.Encrypt == "" {
		t.Errorf("envelope %s: want <xml> with AppId %s and Encrypt only", body, componentAppID)
	}
	if want := callback.MsgSignature(testComponent.Token, stamp, nonce, env.Encrypt); q.Get("msg_signature") != want {
		t.Errorf("msg_signature %q, want %q", q.Get("msg_signature"), want)
	}

	mine, _ := callback.NewCrypter(testComponent.Token, testComponent.EncodingAESKey, componentAppID)
	plain, err := mine.Decrypt(env.Encrypt)
	if err != nil {
		t.Fatalf("decrypting for receive id %s: %v", componentAppID, err)
	}
	others, _ := callback.NewCrypter(testComponent.Token, testComponent.EncodingAESKey, appID)
	if _, err := others.Decrypt(env.Encrypt); !errors.Is(err, callback.ErrReceiveID) {
		t.Errorf("decrypting for another receive id: %v, want ErrReceiveID", err)
	}
	var ev struct {
		XMLName                                          xml.Name
		AppID                                            string `xml:"AppId"`
		CreateTime                                       int64
		InfoType, ComponentVerifyTicket, AuthorizerAppid string
	}
	if err := xml.Unmarshal(plain, &ev); err != nil {
		t.Fatalf("plaintext %s: %v", plain, err)
	}
	if ev.XMLName.Local != "xml" || ev.AppID != componentAppID || ev.CreateTime != morning.Unix() ||
		ev.InfoType != "component_verify_ticket" || ev.ComponentVerifyTicket != ticket || ev.AuthorizerAppid != "" {
		t.Errorf("plaintext %s: want AppId, CreateTime, InfoType component_verify_ticket and ticket %s", plain, ticket)
	}
	if !strings.Contains(string(plain), "<InfoType><![CDATA[component_verify_ticket]]></InfoType>") {
		t.Errorf("plaintext %s: strings are not CDATA as WeChat writes them", plain)
	}
}

func TestPushNotAcknowledged(t *testing.T) {
	e := newCompEnv(t, Config{})
	answers := []struct {
		name   string
		answer func(http.ResponseWriter)
		status int
	}{
		{"other body", func(w http.ResponseWriter) { io.WriteString(w, "ok") }, 200},
		{"success with a newline", func(w http.ResponseWriter) { io.WriteString(w, "success\n") }, 200},
		{"server error", func(w http.ResponseWriter) { http.Error(w, "success", 500) }, 500},
	}
	for _, tt := range answers {
		e.recv.setAnswer(tt.answer)
		ticket, err := e.f.PushTicket(context.Background(), componentAppID)
		var pe *PushError
		if !errors.As(err, &pe) || pe.StatusCode != tt.status {
			t.Errorf("%s: err %v, want a *PushError with status %d", tt.name, err, tt.status)
		}
		// The platform issued the ticket all the same.
		if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != 0 {
			t.Errorf("%s: ticket of an unacknowledged push: %s", tt.name, r.Body)
		}
	}
	if got := e.f.Stats(componentAppID); got.Pushes != 3 || got.PushFailures != 3 {
		t.Errorf("Stats = %+v, want 3 pushes, 3 failures", got)
	}
}

func TestPushWithoutTarget(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.AddComponent(testComponent)
	ticket, err := e.f.PushTicket(context.Background(), componentAppID)
	if !errors.Is(err, ErrNoPushTarget) || ticket == "" {
		t.Fatalf("PushTicket without a target: %q, %v; want a ticket and ErrNoPushTarget", ticket, err)
	}
	if r := e.componentToken(componentAppID, componentSecret, ticket); r.ErrCode != 0 {
		t.Errorf("ticket issued without a target: %s", r.Body)
	}
	if _, err := e.f.PushTicket(context.Background(), "wx-unknown"); err == nil {
		t.Errorf("PushTicket for an unknown component: no error")
	}

	bad := testComponent
	bad.EncodingAESKey = "short"
	e.f.AddComponent(bad)
	e.f.SetPushTarget(componentAppID, "http://127.0.0.1:1/", nil)
	if _, err := e.f.PushTicket(context.Background(), componentAppID); !errors.Is(err, callback.ErrKey) {
		t.Errorf("PushTicket with a bad EncodingAESKey: %v, want callback.ErrKey", err)
	}
}

func TestPushRaw(t *testing.T) {
	e := newCompEnv(t, Config{})
	ctx := context.Background()
	good := []byte(`<xml><AppId><![CDATA[` + componentAppID + `]]></AppId><CreateTime>` +
		strconv.FormatInt(morning.Unix(), 10) + `</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType>` +
		`<ComponentVerifyTicket><![CDATA[ticket@@@raw]]></ComponentVerifyTicket></xml>`)

	status, body, err := e.f.PushRaw(ctx, componentAppID, good, nil)
	if err != nil || status != 200 || body != "success" || e.recv.last().ComponentVerifyTicket != "ticket@@@raw" {
		t.Fatalf("untampered raw push: %d %q %v", status, body, err)
	}

	tests := []struct {
		name   string
		plain  []byte
		tamper func(*http.Request)
		want   error
	}{
		{"wrong msg_signature", good, func(r *http.Request) {
			q := r.URL.Query()
			q.Set("msg_signature", strings.Repeat("0", 40))
			r.URL.RawQuery = q.Encode()
		}, nil},
		{"wrong signature", good, func(r *http.Request) {
			q := r.URL.Query()
			q.Set("signature", strings.Repeat("0", 40))
			r.URL.RawQuery = q.Encode()
		}, nil},
		{"body replaced", good, func(r *http.Request) {
			const forged = `<xml><AppId>x</AppId></xml>`
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(forged)), int64(len(forged))
		}, nil},
		{"ticket push without a ticket", []byte(`<xml><InfoType>component_verify_ticket</InfoType></xml>`), nil, callback.ErrMalformed},
		{"not XML", []byte("hello"), nil, callback.ErrMalformed},
	}
	for _, tt := range tests {
		before := len(e.recv.refusals())
		status, body, err := e.f.PushRaw(ctx, componentAppID, tt.plain, tt.tamper)
		if err != nil || status != http.StatusBadRequest || !strings.HasPrefix(body, "refused") {
			t.Errorf("%s: %d %q %v, want the receiver's 400", tt.name, status, body, err)
			continue
		}
		refused := e.recv.refusals()
		if len(refused) != before+1 {
			t.Errorf("%s: receiver noted %d refusals, want %d", tt.name, len(refused), before+1)
		} else if tt.want != nil && !errors.Is(refused[before], tt.want) {
			t.Errorf("%s: refused with %v, want %v", tt.name, refused[before], tt.want)
		}
	}
	if got := e.f.Stats(componentAppID); got.Pushes != 0 {
		t.Errorf("Stats.Pushes = %d after raw pushes, want 0", got.Pushes)
	}
	if _, _, err := e.f.PushRaw(ctx, "wx-unknown", good, nil); err == nil {
		t.Errorf("PushRaw for an unknown component: no error")
	}
}

func TestStartPushTicket(t *testing.T) {
	e := newCompEnv(t, Config{})
	tests := []struct {
		name, appid, secret string
		code                int
	}{
		{"unknown component", "wx-unknown", componentSecret, codeInvalidAppID},
		{"wrong secret", componentAppID, "nope", codeInvalidSecret},
	}
	for _, tt := range tests {
		if r := e.startPush(tt.appid, tt.secret); r.ErrCode != tt.code {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.code)
		}
	}
	if len(e.recv.all()) != 0 {
		t.Fatalf("failed start_push_ticket calls pushed")
	}

	r := e.startPush(componentAppID, componentSecret)
	if r.ErrCode != 0 || r.ErrMsg != "ok" {
		t.Fatalf("start_push_ticket: %s", r.Body)
	}
	ev := e.recv.wait(t, 1)[0]
	if ev.InfoType != callback.InfoComponentVerifyTicket || ev.ComponentVerifyTicket == "" {
		t.Fatalf("pushed event %+v", ev)
	}
	if tok := e.componentToken(componentAppID, componentSecret, ev.ComponentVerifyTicket); tok.ErrCode != 0 {
		t.Errorf("pushed ticket: %s", tok.Body)
	}
	// The receiver has the event before the fake has its answer; Close
	// would cancel the push still reading it.
	waitFor(t, func() bool { return e.f.Stats(componentAppID).Pushes == 1 })
	e.f.Close()
	// The call for an unknown component is counted nowhere.
	if got := e.f.Stats(componentAppID); got.StartPushCalls != 2 || got.Pushes != 1 || got.PushFailures != 0 {
		t.Errorf("Stats = %+v, want 2 calls, 1 push", got)
	}
	if r := e.startPush(componentAppID, componentSecret); r.ErrCode != codeSystemBusy {
		t.Errorf("start_push_ticket after Close: %s, want errcode %d", r.Body, codeSystemBusy)
	}
}

// TestCloseStopsPushes runs Close while background pushes hang on their
// target; run it under -race.
func TestCloseStopsPushes(t *testing.T) {
	New(Config{}).Close() // nothing to stop

	e := newEnv(t, Config{})
	e.f.AddComponent(testComponent)
	arrived := make(chan struct{}, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the fake hanging up only once the body is read.
		io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-r.Context().Done() // hang until the fake gives up
	}))
	defer ts.Close()
	e.f.SetPushTarget(componentAppID, ts.URL, nil)

	const n = 5
	for range n {
		if r := e.startPush(componentAppID, componentSecret); r.ErrCode != 0 {
			t.Fatalf("start_push_ticket: %s", r.Body)
		}
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no push reached the target")
	}

	done := make(chan struct{})
	go func() {
		e.f.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while pushes hung")
	}
	e.f.Close() // a second Close is harmless
	got := e.f.Stats(componentAppID)
	if got.PushFailures != got.Pushes || got.Pushes == 0 || got.Pushes > n {
		t.Errorf("Stats = %+v, want 1 to %d pushes, all failed", got, n)
	}
}
