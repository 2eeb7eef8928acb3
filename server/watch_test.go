package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// sse is one Server-Sent Event.
type sse struct{ id, event, data string }

// openWatch opens GET /v1/watch?ids=ids and returns the answer and its
// events as they arrive, until the test ends.
func openWatch(t *testing.T, hc *http.Client, base, ids, key, lastID string) (*http.Response, <-chan sse) {
	t.Helper()
	ctx := t.Context()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/watch?ids="+ids, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sse, 16)
	if resp.StatusCode != http.StatusOK {
		close(ch)
		return resp, ch
	}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					select {
					case ch <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sse{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return resp, ch
}

// next returns the stream's next event; a stream that stays silent for
// long fails the test.
func next(t *testing.T, ch <-chan sse) sse {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch stream ended")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event from the watch stream")
	}
	return sse{}
}

// tokenOf decodes an event's token.
func tokenOf(t *testing.T, ev sse) tokenBody {
	t.Helper()
	var b tokenBody
	if ev.event != "token" || json.Unmarshal([]byte(ev.data), &b) != nil {
		t.Fatalf("event %+v: want a token event", ev)
	}
	return b
}

// refresh makes WeChat end id's token and the manager replace it, and
// returns the new token.
func (e *env) refresh(t *testing.T, id string) string {
	t.Helper()
	old, err := e.m.Token(id)
	if err != nil {
		t.Fatal(err)
	}
	e.fake.Expire(id)
	s, err := e.m.Invalidate(t.Context(), id, old.Token)
	if err != nil || s.Token == old.Token {
		t.Fatalf("refresh %s: %v, %v", id, s, err)
	}
	return s.Token
}

// TestWatchStateThenChanges: a stream first carries the current token of
// each watched credential, then each new one as it replaces the old, and
// nothing of credentials it does not watch.
func TestWatchStateThenChanges(t *testing.T) {
	e := newEnv(t)
	resp, ch := openWatch(t, e.srv.Client(), e.srv.URL, "shop,hr", opsKey, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	seen := map[string]string{}
	for range 2 {
		b := tokenOf(t, next(t, ch))
		seen[b.ID] = b.AccessToken
	}
	for _, id := range []string{"shop", "hr"} {
		if s, _ := e.m.Token(id); seen[id] != s.Token {
			t.Errorf("first event of %s carries %q, want the current token %q", id, seen[id], s.Token)
		}
	}
	_, hrOnly := openWatch(t, e.srv.Client(), e.srv.URL, "hr", opsKey, "")
	if b := tokenOf(t, next(t, hrOnly)); b.ID != "hr" {
		t.Fatalf("first event of a stream watching hr: %+v", b)
	}
	fresh := e.refresh(t, "shop")
	if b := tokenOf(t, next(t, ch)); b.ID != "shop" || b.AccessToken != fresh || b.ExpiresIn <= 0 {
		t.Fatalf("event after the refresh: %+v, want shop's new token %q", b, fresh)
	}
	hr := e.refresh(t, "hr")
	// The stream watching hr alone skipped shop's refresh.
	if b := tokenOf(t, next(t, hrOnly)); b.ID != "hr" || b.AccessToken != hr {
		t.Fatalf("next event of the stream watching hr: %+v, want hr's new token %q", b, hr)
	}
}

// TestWatchResume: a client that reconnects with the Last-Event-ID it
// read gets exactly the events it missed, in order; with an id the server
// cannot resume from, it gets the current state instead.
func TestWatchResume(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/watch?ids=shop", nil)
	req.Header.Set("Authorization", "Bearer "+opsKey)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var last string
	for sc.Scan() && sc.Text() != "" {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			last = id
		}
	}
	cancel()
	resp.Body.Close()
	if last == "" {
		t.Fatal("no event id in the first event")
	}

	missed := []string{e.refresh(t, "shop"), e.refresh(t, "hr"), e.refresh(t, "shop")}
	_, ch := openWatch(t, e.srv.Client(), e.srv.URL, "shop", opsKey, last)
	for _, want := range []string{missed[0], missed[2]} {
		if b := tokenOf(t, next(t, ch)); b.AccessToken != want {
			t.Fatalf("resumed stream: %q, want the missed token %q", b.AccessToken, want)
		}
	}
	fresh := e.refresh(t, "shop")
	if b := tokenOf(t, next(t, ch)); b.AccessToken != fresh {
		t.Fatalf("after the missed events: %q, want %q", b.AccessToken, fresh)
	}

	epoch, _, _ := strings.Cut(last, ".")
	for _, bad := range []string{"nonsense", "000000000000.1", epoch + ".999999", epoch + ".-1"} {
		_, ch := openWatch(t, e.srv.Client(), e.srv.URL, "shop", opsKey, bad)
		if b := tokenOf(t, next(t, ch)); b.AccessToken != fresh {
			t.Errorf("Last-Event-ID %q: first event %q, want the current token %q", bad, b.AccessToken, fresh)
		}
	}
}

// TestWatchRefusals: what a stream may not watch is refused before any
// event, with the API's error shape.
func TestWatchRefusals(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name, ids, key string
		status         int
		code           string
	}{
		{"no key", "shop", "", 401, "unauthorized"},
		{"no ids", "", opsKey, 400, "bad_request"},
		{"empty id", "shop,", opsKey, 400, "bad_request"},
		{"unknown", "nope", opsKey, 404, "not_found"},
		{"forbidden", "shop,hr", shopKey, 403, "forbidden"},
		{"no such ticket", "shop/tickets/jsapi", opsKey, 404, "not_found"},
		{"too many", strings.Repeat("shop,", maxWatchIDs) + "shop", opsKey, 400, "bad_request"},
	} {
		r := e.do(t, "GET", "/v1/watch?ids="+tt.ids, tt.key, "")
		if r.status != tt.status || !strings.Contains(r.body, `"code":"`+tt.code+`"`) {
			t.Errorf("%s: %d %s; want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}

	// A client's streams are bounded.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	api, err := New(Config{Tokens: e.m, Logger: quiet, WatchesPerClient: 2, Clients: []Client{
		{Name: "ops", KeyHash: sha256.Sum256([]byte(opsKey)), Allow: []string{"*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer api.Close()
	for range 2 {
		if resp, ch := openWatch(t, srv.Client(), srv.URL, "shop", opsKey, ""); resp.StatusCode != 200 {
			t.Fatalf("a stream within the bound: %d", resp.StatusCode)
		} else {
			next(t, ch)
		}
	}
	resp, _ := openWatch(t, srv.Client(), srv.URL, "shop", opsKey, "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), "too_many_watches") {
		t.Fatalf("a stream over the bound: %d %s, want 429 too_many_watches", resp.StatusCode, b)
	}
}

// TestThousandWatchers: a refresh reaches 1,000 streams on one instance.
func TestThousandWatchers(t *testing.T) {
	e := newEnv(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	api, err := New(Config{Tokens: e.m, Logger: quiet, WatchesPerClient: 1000, Clients: []Client{
		{Name: "ops", KeyHash: sha256.Sum256([]byte(opsKey)), Allow: []string{"*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer api.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: -1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	const n = 1000
	chans := make([]<-chan sse, n)
	for i := range chans {
		resp, ch := openWatch(t, hc, srv.URL, "shop", opsKey, "")
		if resp.StatusCode != 200 {
			t.Fatalf("watcher %d: %d", i, resp.StatusCode)
		}
		chans[i] = ch
	}
	for _, ch := range chans {
		tokenOf(t, next(t, ch))
	}
	start := time.Now()
	fresh := e.refresh(t, "shop")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, ch := range chans {
		wg.Go(func() {
			select {
			case ev := <-ch:
				var b tokenBody
				if json.Unmarshal([]byte(ev.data), &b); b.AccessToken != fresh {
					errs <- fmt.Errorf("watcher %d: %+v, want the new token", i, ev)
				}
			case <-time.After(30 * time.Second):
				errs <- fmt.Errorf("watcher %d: no event", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("a refresh reached %d watchers in %v", n, time.Since(start).Round(time.Millisecond))
}

// TestStalledWatcherDropped: a client that stops reading is cut off once
// its writes time out, while events keep being published without waiting
// and another stream receives every one of them.
func TestStalledWatcherDropped(t *testing.T) {
	e := newEnv(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	api, err := New(Config{Tokens: e.m, Logger: quiet, Clients: []Client{
		{Name: "stalled", KeyHash: sha256.Sum256([]byte(shopKey)), Allow: []string{"*"}},
		{Name: "ops", KeyHash: sha256.Sum256([]byte(opsKey)), Allow: []string{"*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	api.hub.writeTimeout = 5 * time.Second
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer api.Close()

	// The stalled client sends its request and never reads.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/watch?ids=shop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", shopKey)
	for deadline := time.Now().Add(20 * time.Second); api.hub.streamsOf("stalled") == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled client's stream never opened")
		}
	}
	_, ch := openWatch(t, srv.Client(), srv.URL, "shop", opsKey, "")
	next(t, ch)

	// Events far larger than the socket buffers between the two.
	big := strings.Repeat("x", 64<<10)
	const events = 200
	for i := range events {
		api.hub.publish(&token.Snapshot{ID: "shop", Kind: "mp", Token: fmt.Sprint(i, big), ServeUntil: time.Now().Add(time.Hour)})
	}
	for i := range events {
		if b := tokenOf(t, next(t, ch)); !strings.HasPrefix(b.AccessToken, fmt.Sprint(i, "x")) {
			t.Fatalf("event %d of the reading stream: %.20q", i, b.AccessToken)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); api.hub.streamsOf("stalled") != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream was never ended")
		}
	}
}
