package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The watch stream (GET /v1/watch?ids=a,b, text/event-stream). The server
// sends the current state of every watched id on connect, then one event
// per change, each with "id: <instance>.<seq>", which a reconnect sends
// back as Last-Event-ID to resume without loss; ": ping" comments arrive
// every 15 s by default. Events:
//
//	event: token        data: {"id","kind","access_token","expires_in","expires_at"}
//	event: ticket       data: {"id","type","ticket","expires_in","expires_at"}
//	event: unavailable  data: {"id","state"}
//
// An unknown id is answered 404 and a forbidden one 403, before any event.
const (
	// watchIdle is how long a stream may stay silent, heartbeats included,
	// before it is taken for dead: three missed heartbeats.
	watchIdle = 45 * time.Second
	// watchSettle lets sources created together join one connection.
	watchSettle = 50 * time.Millisecond
	// watchMaxBackoff caps the wait between reconnects; 403 and 404, which
	// a retry does not cure, wait this long at once.
	watchMaxBackoff = 30 * time.Second
	// eventMargin is taken off a pushed lifetime, for the time the event
	// spent between the server, which computes expires_in as it writes
	// the event, and us.
	eventMargin = 250 * time.Millisecond
	// maxWatchIDs is the most ids the server takes in one stream.
	maxWatchIDs = 1000
	// maxEventLine bounds one line of the stream.
	maxEventLine = 64 << 10
)

// watcher keeps the client's one stream.
type watcher struct {
	c *Client
	// kick tells the stream that the set of sources changed; it reconnects
	// to watch them all, resuming where it was.
	kick   chan struct{}
	lastID string
}

// startWatchLocked starts the stream, or tells the running one to take in
// a new source. The caller holds c.mu.
func (c *Client) startWatchLocked() {
	if c.watcher != nil {
		select {
		case c.watcher.kick <- struct{}{}:
		default:
		}
		return
	}
	w := &watcher{c: c, kick: make(chan struct{}, 1)}
	c.watcher = w
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		w.run(c.ctx)
	}()
}

// run connects, reads, and reconnects with jittered exponential backoff
// until the client closes.
func (w *watcher) run(ctx context.Context) {
	if !sleepCtx(ctx, watchSettle) {
		return
	}
	failures := 0
	for {
		delivered, err := w.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		w.c.streaming.Store(false)
		kicked := errors.Is(err, errKicked)
		if !kicked {
			w.c.pokeSources() // refresh what the stream would have brought
		}
		if delivered || kicked {
			failures = 0
		}
		if kicked {
			if !sleepCtx(ctx, watchSettle) {
				return
			}
			continue
		}
		failures++
		d := min(time.Second<<min(failures-1, 10), watchMaxBackoff)
		var e *Error
		if errors.As(err, &e) && (e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusForbidden) {
			d = watchMaxBackoff
		}
		if err != nil {
			w.c.log.Warn("wxtoken client: watch stream down", "err", err, "retry_in", d)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-time.After(w.c.jitter(d, 0.2)):
		}
	}
}

var errKicked = errors.New("watch: sources changed")

// stream runs one connection. It reports whether any event arrived.
func (w *watcher) stream(parent context.Context) (delivered bool, err error) {
	// A kick from before this point is answered by reading the ids now.
	select {
	case <-w.kick:
	default:
	}
	ids := w.c.watchedIDs()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// A kick or a silent connection ends the read; the helper ends with
	// the stream and is waited for.
	var wg sync.WaitGroup
	done := make(chan struct{})
	idle := time.AfterFunc(watchIdle, func() { cancel(errors.New("watch: no heartbeat")) })
	defer idle.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-w.kick:
			cancel(errKicked)
		case <-done:
		}
	}()
	defer wg.Wait()
	defer close(done)

	q := url.Values{"ids": {strings.Join(ids, ",")}}
	req, err := http.NewRequestWithContext(ctx, "GET", w.c.base.String()+"/v1/watch?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", w.c.auth)
	req.Header.Set("Accept", "text/event-stream")
	if w.lastID != "" {
		req.Header.Set("Last-Event-ID", w.lastID)
	}
	resp, err := w.c.http.Do(req)
	if err != nil {
		return false, cause(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return false, decodeError(resp, data)
	}
	w.c.streaming.Store(true)
	rd := bufio.NewReaderSize(resp.Body, 4<<10)
	var ev event
	for {
		line, err := readLine(rd)
		if err != nil {
			return delivered, cause(ctx, err)
		}
		idle.Reset(watchIdle)
		if line != "" {
			ev.field(line)
			continue
		}
		if ev.data.Len() > 0 || ev.name != "" {
			if ev.id != "" {
				w.lastID = ev.id
			}
			w.c.dispatch(ev.name, ev.data.String(), time.Now())
			delivered = true
		}
		ev.reset()
	}
}

// cause is the reason the stream's context ended, if it did, else err.
func cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return err
}

// readLine reads one line without its end ("\n" or "\r\n").
func readLine(rd *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := rd.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxEventLine {
			return "", errors.New("watch: line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// event is one Server-Sent Event being read.
type event struct {
	id, name string
	data     strings.Builder
}

// field takes one "name: value" line; lines starting with ':' are
// comments (the heartbeat), and unknown fields are ignored, as the
// EventSource specification says.
func (e *event) field(line string) {
	if strings.HasPrefix(line, ":") {
		return
	}
	name, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch name {
	case "id":
		e.id = value
	case "event":
		e.name = value
	case "data":
		if e.data.Len() > 0 {
			e.data.WriteByte('\n')
		}
		e.data.WriteString(value)
	}
}

func (e *event) reset() { e.name = ""; e.data.Reset() }

// dispatch applies one event to the source it names.
func (c *Client) dispatch(name, data string, received time.Time) {
	var ev struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		AccessToken string `json:"access_token"`
		Ticket      string `json:"ticket"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.ID == "" {
		c.log.Warn("wxtoken client: watch: undecodable event", "event", name)
		return
	}
	key := ev.ID
	if name == "ticket" {
		key = ev.ID + "/tickets/" + ev.Type
	}
	c.mu.Lock()
	s := c.sources[sourceKey{key, name == "ticket"}]
	if s == nil && name == "unavailable" {
		s = c.sources[sourceKey{key, true}]
	}
	c.mu.Unlock()
	if s == nil {
		return
	}
	start := received.Add(-eventMargin)
	switch name {
	case "token":
		if !s.ticket && ev.AccessToken != "" {
			s.store(ev.AccessToken, ev.ExpiresIn, start, false)
		}
	case "ticket":
		if s.ticket && ev.Ticket != "" {
			s.store(ev.Ticket, ev.ExpiresIn, start, false)
		}
	case "unavailable":
		s.drop("")
	}
}

// watchedIDs are the ids of every source, sorted; past maxWatchIDs, the
// most one stream takes, the rest refresh before expiry without events.
func (c *Client) watchedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.sources))
	for k := range c.sources {
		ids = append(ids, k.key)
	}
	slices.Sort(ids)
	if len(ids) > maxWatchIDs {
		c.log.Warn("wxtoken client: more sources than one watch stream takes; the rest poll", "watched", maxWatchIDs, "sources", len(ids))
		ids = ids[:maxWatchIDs]
	}
	return ids
}

// pokeSources lets every source check its refresh time now that the
// stream is down.
func (c *Client) pokeSources() {
	c.mu.Lock()
	list := make([]*source, 0, len(c.sources))
	for _, s := range c.sources {
		list = append(list, s)
	}
	c.mu.Unlock()
	for _, s := range list {
		s.tick()
	}
}

// sleepCtx waits for d and reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
