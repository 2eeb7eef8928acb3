package client_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/clienttest"
)

// watchServer plays the server side of the watch protocol (GET /v1/watch,
// Server-Sent Events) and of GET /v1/tokens/{id}, for the client's tests
// of it: ids and tokens are whatever the test sets.
type watchServer struct {
	mu      sync.Mutex
	values  map[string]string // id → current token; "" while unavailable
	life    int64             // expires_in of every answer and event
	events  []string          // every change as an SSE event (without its id line)
	eventID []string          // the id of each, "w1.<seq>"
	eventOf []string          // the credential id of each
	changed chan struct{}     // closed and replaced at every change
	drop    chan struct{}     // closed and replaced to end every open stream
	conns   []watchConn       // every /v1/watch request
	gets    map[string]int    // GET /v1/tokens/{id} by id
	refuse  int               // answer /v1/watch with this status; 0 serves it
	silent  bool              // no heartbeat
}

type watchConn struct{ ids, lastEventID string }

const watchKey = "watch-key-0123456789"

// quiet keeps the client's warnings about the stream out of the test log.
var quiet = client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func newWatchServer(life int64, values map[string]string) *watchServer {
	return &watchServer{values: values, life: life, changed: make(chan struct{}), drop: make(chan struct{}),
		gets: map[string]int{}}
}

func (ws *watchServer) tokenJSON(id, tok string) string {
	b, _ := json.Marshal(map[string]any{"id": id, "kind": "mp", "access_token": tok, "expires_in": ws.life,
		"expires_at": time.Now().Add(time.Duration(ws.life) * time.Second).UTC().Format(time.RFC3339)})
	return string(b)
}

// set changes id's token (or makes it unavailable, with "") and records
// the event.
func (ws *watchServer) set(id, tok string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.values[id] = tok
	ev := "event: token\ndata: " + ws.tokenJSON(id, tok) + "\n"
	if tok == "" {
		ev = `event: unavailable` + "\ndata: " + `{"id":"` + id + `","state":"unavailable"}` + "\n"
	}
	ws.events = append(ws.events, ev)
	ws.eventID = append(ws.eventID, "w1."+strconv.Itoa(len(ws.events)))
	ws.eventOf = append(ws.eventOf, id)
	close(ws.changed)
	ws.changed = make(chan struct{})
}

func (ws *watchServer) dropStreams() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	close(ws.drop)
	ws.drop = make(chan struct{})
}

func (ws *watchServer) connections() []watchConn {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]watchConn(nil), ws.conns...)
}

func (ws *watchServer) getCount(id string) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.gets[id]
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"%s"}}`, code, code)
}

func (ws *watchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+watchKey {
		writeErr(w, 401, "unauthorized")
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/tokens/"); ok {
		ws.mu.Lock()
		ws.gets[id]++
		tok, known := ws.values[id]
		ws.mu.Unlock()
		switch {
		case !known:
			writeErr(w, 404, "not_found")
		case tok == "":
			writeErr(w, 503, "unavailable")
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, ws.tokenJSON(id, tok))
		}
		return
	}
	if r.URL.Path != "/v1/watch" {
		writeErr(w, 404, "not_found")
		return
	}
	ws.stream(w, r)
}

// stream serves one watch: the current state of every id (or, with a known
// Last-Event-ID, the changes after it), then each change, and a ping every
// 15 s.
func (ws *watchServer) stream(w http.ResponseWriter, r *http.Request) {
	ids := strings.Split(r.URL.Query().Get("ids"), ",")
	ws.mu.Lock()
	ws.conns = append(ws.conns, watchConn{ids: r.URL.Query().Get("ids"), lastEventID: r.Header.Get("Last-Event-ID")})
	refuse := ws.refuse
	for _, id := range ids {
		if _, ok := ws.values[id]; !ok && refuse == 0 {
			refuse = 404
		}
	}
	ws.mu.Unlock()
	if refuse != 0 {
		writeErr(w, refuse, http.StatusText(refuse))
		return
	}
	watched := map[string]bool{}
	for _, id := range ids {
		watched[id] = true
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	rc := http.NewResponseController(w)
	rc.Flush()

	ws.mu.Lock()
	next := len(ws.events)
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		for i, id := range ws.eventID {
			if id == last {
				next = i + 1
			}
		}
	} else {
		cur := "w1." + strconv.Itoa(len(ws.events))
		for _, id := range ids {
			fmt.Fprintf(w, "id: %s\nevent: token\ndata: %s\n\n", cur, ws.tokenJSON(id, ws.values[id]))
		}
	}
	ws.mu.Unlock()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		ws.mu.Lock()
		for ; next < len(ws.events); next++ {
			if watched[ws.eventOf[next]] {
				fmt.Fprintf(w, "id: %s\n%s\n", ws.eventID[next], ws.events[next])
			}
		}
		changed, drop, silent := ws.changed, ws.drop, ws.silent
		ws.mu.Unlock()
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-changed:
		case <-drop:
			return
		case <-r.Context().Done():
			return
		case <-ping.C:
			if !silent {
				fmt.Fprint(w, ": ping\n\n")
			}
		}
	}
}

// TestWatch: with WithWatch, a change pushed by the server replaces the
// cached token at once, without a fetch; with the stream up the client does
// not poll; a dropped stream is resumed with Last-Event-ID and the change
// made meanwhile arrives; an unavailable event drops the cached token; a
// silent stream is taken for dead and replaced.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ws := newWatchServer(3600, map[string]string{"a": "t1", "b": "u1"})
		c, err := client.New("http://wxtoken.test", watchKey, client.WithWatch(), client.WithHTTPClient(clienttest.HandlerClient(ws)), quiet)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		a, b := c.TokenSource("a"), c.TokenSource("b")
		read := func(ts *client.TokenSource) string {
			t.Helper()
			v, err := ts.Token(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if read(a) != "t1" || read(b) != "u1" {
			t.Fatal("first reads")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if conns := ws.connections(); len(conns) != 1 || conns[0].ids != "a,b" || conns[0].lastEventID != "" {
			t.Fatalf("watch requests %+v, want one for a,b", conns)
		}

		ws.set("a", "t2")
		synctest.Wait()
		if got := read(a); got != "t2" || ws.getCount("a") != 1 {
			t.Fatalf("after the event: %s with %d fetches, want t2 with the first fetch only", got, ws.getCount("a"))
		}

		// The stream drops; a change made while it is down arrives on the
		// resumed stream.
		ws.dropStreams()
		ws.set("a", "t3")
		time.Sleep(watchBackoffMax)
		synctest.Wait()
		conns := ws.connections()
		if len(conns) != 2 || conns[1].lastEventID != "w1.1" {
			t.Fatalf("after the drop: requests %+v, want a second resuming after w1.1", conns)
		}
		if got := read(a); got != "t3" || ws.getCount("a") != 1 {
			t.Fatalf("after the resume: %s with %d fetches, want t3 with the first only", got, ws.getCount("a"))
		}

		// Past the point where a source without the stream refreshes
		// (three quarters of its life): the stream brings changes, so
		// nothing is fetched, and the heartbeats keep the stream.
		time.Sleep(50 * time.Minute)
		synctest.Wait()
		if n, conns := ws.getCount("a")+ws.getCount("b"), ws.connections(); n != 2 || len(conns) != 2 {
			t.Fatalf("50 minutes with the stream up: %d fetches and %d connections, want 2 and 2", n, len(conns))
		}

		// Unavailable: the cached token is dropped, the next read asks.
		ws.set("b", "")
		synctest.Wait()
		if _, err := b.Token(t.Context()); err == nil || ws.getCount("b") != 2 {
			t.Fatalf("read after unavailable: err %v, %d fetches; want the server's error on a second fetch", err, ws.getCount("b"))
		}

		// A stream that goes silent (no heartbeat) is replaced.
		ws.mu.Lock()
		ws.silent = true
		ws.mu.Unlock()
		time.Sleep(time.Minute + watchBackoffMax) // a ping may be on its way; then 45 s of silence
		synctest.Wait()
		if conns := ws.connections(); len(conns) < 3 || conns[2].lastEventID != "w1.3" {
			t.Fatalf("after a silent minute: requests %+v, want a third resuming after w1.3", conns)
		}

		// A new source joins the stream: it reconnects for all three,
		// resuming, and the new source's changes arrive.
		ws.mu.Lock()
		ws.silent = false
		ws.values["c"] = "v1"
		ws.mu.Unlock()
		cs := c.TokenSource("c")
		time.Sleep(time.Second)
		synctest.Wait()
		conns = ws.connections()
		if last := conns[len(conns)-1]; last.ids != "a,b,c" || last.lastEventID != "w1.3" {
			t.Fatalf("after a new source: last request %+v, want a,b,c resuming after w1.3", last)
		}
		ws.set("c", "v2")
		synctest.Wait()
		if got := read(cs); got != "v2" || ws.getCount("c") != 0 {
			t.Fatalf("new source: %s after %d fetches, want v2 from its event", got, ws.getCount("c"))
		}
	})
}

// watchBackoffMax is more than the client's first reconnect delay (1 s,
// jittered by ±20%).
const watchBackoffMax = 2 * time.Second

// TestWatchDown: while the server refuses the stream, sources refresh
// before expiry as without it, and reconnects back off.
func TestWatchDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ws := newWatchServer(60, map[string]string{"a": "t1"})
		ws.refuse = 503
		c, err := client.New("http://wxtoken.test", watchKey, client.WithWatch(), client.WithHTTPClient(clienttest.HandlerClient(ws)), quiet)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		a := c.TokenSource("a")
		if v, err := a.Token(t.Context()); v != "t1" || err != nil {
			t.Fatalf("first read: %s, %v", v, err)
		}
		ws.set("a", "t2")
		// The refresh comes at 75% ± 10% of the 60 s life.
		time.Sleep(50 * time.Second)
		synctest.Wait()
		if n := ws.getCount("a"); n != 2 {
			t.Fatalf("%d fetches in 50 s of a 60 s token with the stream down, want 2", n)
		}
		if v, _ := a.Token(t.Context()); v != "t2" || ws.getCount("a") != 2 {
			t.Fatalf("read after the refresh: %s, %d fetches; want t2 from the cache", v, ws.getCount("a"))
		}
		// Waits of 1, 2, 4, 8, 16 and then 30 s, each ±20%: the sixth
		// attempt comes 24.8 to 37.2 s in, the seventh 48.8 to 73.2 s.
		if n := len(ws.connections()); n < 6 || n > 7 {
			t.Errorf("%d watch attempts in 50 s, want 6 or 7 under exponential backoff", n)
		}
	})
}

// TestNamespacedID: an authorizer's id spans two path segments, each
// escaped on its own.
func TestNamespacedID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "shop-platform/wx1234567890abcdef"
		ws := newWatchServer(3600, map[string]string{id: "t1"})
		var paths []string
		rec := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			paths = append(paths, r.URL.EscapedPath())
			ws.ServeHTTP(w, r)
		})
		c, err := client.New("http://wxtoken.test/", watchKey, client.WithHTTPClient(clienttest.HandlerClient(rec)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v, err := c.TokenSource(id).Token(t.Context()); v != "t1" || err != nil {
			t.Fatalf("Token: %s, %v", v, err)
		}
		if len(paths) != 1 || paths[0] != "/v1/tokens/"+id {
			t.Fatalf("requested %q, want /v1/tokens/%s", paths, id)
		}
	})
}

// TestMissHold: a reader in a tight loop against a server that fails, or
// answers a token with no time left to cache it, makes about ten requests
// a second, not one per read.
func TestMissHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ws := newWatchServer(0, map[string]string{"dying": "t1"})
		c, err := client.New("http://wxtoken.test", watchKey, client.WithHTTPClient(clienttest.HandlerClient(ws)), quiet)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tc := range []struct {
			id      string
			wantErr bool
		}{{"dying", false}, {"missing", true}} {
			ts := c.TokenSource(tc.id)
			reads := 0
			for end := time.Now().Add(time.Second); time.Now().Before(end); reads++ {
				v, err := ts.Token(t.Context())
				if (err != nil) != tc.wantErr || (err == nil && v != "t1") {
					t.Fatalf("%s: %q, %v", tc.id, v, err)
				}
				time.Sleep(time.Millisecond)
			}
			if n := ws.getCount(tc.id); n < 2 || n > 11 {
				t.Errorf("%s: %d requests for %d reads in a second, want one per 100 ms", tc.id, n, reads)
			}
		}
	})
}

// TestBackgroundRefresh: a token that was read is fetched again before it
// runs out, so that readers never wait; one nobody read since its fetch is
// left to expire, and is not served past its expires_in.
func TestBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ws := newWatchServer(60, map[string]string{"a": "t1"})
		c, err := client.New("http://wxtoken.test", watchKey, client.WithHTTPClient(clienttest.HandlerClient(ws)), quiet)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		a := c.TokenSource("a")
		if v, _ := a.Token(t.Context()); v != "t1" {
			t.Fatalf("first read: %s", v)
		}
		ws.set("a", "t2")
		time.Sleep(50 * time.Second) // past 75% ± 10% of 60 s
		synctest.Wait()
		if n := ws.getCount("a"); n != 2 {
			t.Fatalf("%d fetches 50 s into a 60 s token that was read, want 2", n)
		}
		// t2, fetched at about 45 s, is not read: no refresh, and at its
		// end (60 s after its fetch) it is dropped.
		ws.set("a", "t3")
		time.Sleep(60 * time.Second) // t2 was fetched 40.5 to 49.5 s in
		synctest.Wait()
		if n := ws.getCount("a"); n != 2 {
			t.Fatalf("%d fetches of an unread token, want still 2", n)
		}
		if v, _ := a.Token(t.Context()); v != "t3" || ws.getCount("a") != 3 {
			t.Fatalf("read after the unread token's end: %s with %d fetches, want t3 fetched", v, ws.getCount("a"))
		}
	})
}
