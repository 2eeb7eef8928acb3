package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// GET /v1/watch?ids=a,b streams Server-Sent Events: the current state of
// each watched credential, then an event whenever what a caller caches
// must change (a new token, a revocation, an earlier end). A client that
// caches tokens learns of a refresh made anywhere in the cluster as soon
// as this instance does, instead of at its own expiry.
//
// Every event that changes a token is kept, in order, in one ring shared
// by every stream, and a stream reads the ring at its own pace: the path
// that publishes an event only appends it and wakes the readers, so a
// slow or stalled stream never slows the refreshes or the other streams.
// A stream that falls a whole ring behind, or cannot write for
// watchWriteTimeout, is ended; the client reconnects with Last-Event-ID,
// and is sent whatever it missed, or the current state of everything it
// watches when the ring no longer holds it.

const (
	// watchRing is how many events are kept for streams that read late
	// and for resuming.
	watchRing = 4096
	// maxWatchIDs bounds the credentials one stream watches.
	maxWatchIDs = 1000
	// watchWriteTimeout ends a stream whose client does not read.
	watchWriteTimeout = 10 * time.Second
	// defaultWatchHeartbeat is how often an idle stream sends a comment,
	// so that proxies keep it open and the client knows it is alive.
	defaultWatchHeartbeat = 15 * time.Second
	// watchChunk is how much a stream gathers before it writes: each
	// write has watchWriteTimeout to go through.
	watchChunk = 32 << 10
	// defaultWatchesPerClient bounds the open streams of one client.
	defaultWatchesPerClient = 64
)

// watchHub holds the ring of events and the open streams.
type watchHub struct {
	// epoch names this process's sequence of events: an event id from
	// another process, or an earlier one, cannot be resumed from.
	epoch        string
	heartbeat    time.Duration
	perClient    int
	writeTimeout time.Duration
	obs          Observer // nil: none

	mu      sync.Mutex
	seq     uint64 // of the newest event; event n is ring[n%watchRing]
	ring    [watchRing]*token.Snapshot
	changed chan struct{} // closed and replaced at each event
	streams map[string]int
	done    chan struct{} // closed by close: every stream ends
	closed  bool
}

func newWatchHub(heartbeat time.Duration, perClient int, obs Observer) *watchHub {
	if heartbeat <= 0 {
		heartbeat = defaultWatchHeartbeat
	}
	if perClient <= 0 {
		perClient = defaultWatchesPerClient
	}
	var b [6]byte
	rand.Read(b[:])
	return &watchHub{epoch: hex.EncodeToString(b[:]), heartbeat: heartbeat, perClient: perClient, obs: obs,
		writeTimeout: watchWriteTimeout, changed: make(chan struct{}), streams: map[string]int{}, done: make(chan struct{})}
}

// publish appends an event. It is called by the token manager with the
// credential locked: it takes the hub's lock only, and never waits.
func (h *watchHub) publish(s *token.Snapshot) {
	h.mu.Lock()
	h.seq++
	h.ring[h.seq%watchRing] = s
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	if h.obs != nil {
		h.obs.WatchEvent()
	}
}

// close ends every stream.
func (h *watchHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// acquire counts a stream of the client, false if it has too many.
func (h *watchHub) acquire(client string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[client] >= h.perClient {
		return false
	}
	h.streams[client]++
	if h.obs != nil {
		h.obs.WatchStreams(1)
	}
	return true
}

func (h *watchHub) release(client string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[client]--; h.streams[client] <= 0 {
		delete(h.streams, client)
	}
	if h.obs != nil {
		h.obs.WatchStreams(-1)
	}
}

// streamsOf is how many streams the client has open.
func (h *watchHub) streamsOf(client string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[client]
}

// event is one entry of the ring.
type event struct {
	seq  uint64
	snap *token.Snapshot
}

// since appends to buf the events after seq and returns them with the
// newest seq and the channel closed at the next event; ok is false when
// the ring no longer holds every event after seq.
func (h *watchHub) since(seq uint64, buf []event) (events []event, last uint64, changed <-chan struct{}, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seq-seq > watchRing {
		return buf, h.seq, h.changed, false
	}
	for n := seq + 1; n <= h.seq; n++ {
		buf = append(buf, event{n, h.ring[n%watchRing]})
	}
	return buf, h.seq, h.changed, true
}

// resumable returns the seq a Last-Event-ID names, if the ring still
// holds every event after it.
func (h *watchHub) resumable(lastID string) (uint64, bool) {
	epoch, n, ok := strings.Cut(lastID, ".")
	if !ok || epoch != h.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || seq > h.seq || h.seq-seq > watchRing {
		return 0, false
	}
	return seq, true
}

func (h *watchHub) current() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// watched is one credential a stream watches: a token, or a ticket of
// the credential parent.
type watched struct {
	id     string // the credential's id (a ticket's: {parent}/tickets/{typ})
	parent string // a ticket's credential, "" for a token
	typ    string
}

// watchIDs checks the ids a stream asks for: each must exist and be
// allowed to the client, before anything is streamed.
func (s *Server) watchIDs(r *http.Request) (map[string]watched, error) {
	raw := r.URL.Query().Get("ids")
	if raw == "" {
		return nil, &badRequest{"ids is required: the credentials to watch, comma-separated (a ticket as {id}/tickets/{type})"}
	}
	list := strings.Split(raw, ",")
	if len(list) > maxWatchIDs {
		return nil, &badRequest{fmt.Sprintf("at most %d ids per watch, got %d", maxWatchIDs, len(list))}
	}
	out := make(map[string]watched, len(list))
	for _, id := range list {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, &badRequest{"ids holds an empty id"}
		}
		if parent, typ, ok := strings.Cut(id, "/tickets/"); ok {
			_, tid, err := s.ticketOf(r, parent, typ)
			if err != nil {
				return nil, err
			}
			out[tid] = watched{id: tid, parent: s.canonical(parent), typ: typ}
			continue
		}
		if _, err := s.authorizeToken(r, id); err != nil {
			return nil, err
		}
		snap, err := s.tokens.Snapshot(id)
		if err != nil {
			return nil, err
		}
		out[snap.ID] = watched{id: snap.ID}
	}
	return out, nil
}

// watch answers GET /v1/watch.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) error {
	c, err := s.clients.authenticate(r)
	if err != nil {
		return err
	}
	ids, err := s.watchIDs(r)
	if err != nil {
		return err
	}
	if !s.hub.acquire(c.name) {
		return &tooMany{fmt.Sprintf("client %s has %d watch streams open, the most it may", c.name, s.hub.perClient)}
	}
	defer s.hub.release(c.name)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on as they come
	w.WriteHeader(http.StatusOK)

	st := &stream{w: w, rc: rc, hub: s.hub, ids: ids}
	from, resumed := s.hub.resumable(r.Header.Get("Last-Event-ID"))
	if !resumed {
		// Everything from now on is streamed; the state read after this
		// point is at least as new as event from.
		from = s.hub.current()
		for _, wt := range ids {
			snap, err := s.tokens.Snapshot(wt.id)
			if err != nil {
				continue // gone since it was checked; its events will say
			}
			st.add(from, snap)
		}
	}
	if err := st.flush(); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(s.hub.heartbeat)
	defer heartbeat.Stop()
	var buf []event
	for {
		events, last, changed, ok := s.hub.since(from, buf[:0])
		if !ok {
			s.log.Warn("watch stream ended: the client read too slowly", "client", c.name)
			return nil
		}
		for _, ev := range events {
			st.add(ev.seq, ev.snap)
			if len(st.out) >= watchChunk {
				if err := st.flush(); err != nil {
					return nil
				}
			}
		}
		from, buf = last, events
		if err := st.flush(); err != nil {
			return nil
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			st.out = append(st.out, ": ping\n\n"...)
		case <-r.Context().Done():
			return nil
		case <-s.hub.done:
			return nil
		}
	}
}

// stream is the writing half of one watch.
type stream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	hub *watchHub
	ids map[string]watched
	out []byte
}

// add appends the event of snap, numbered seq, if the stream watches it.
func (st *stream) add(seq uint64, snap *token.Snapshot) {
	wt, ok := st.ids[snap.ID]
	if !ok {
		return
	}
	now := time.Now()
	st.out = append(st.out, "id: "...)
	st.out = append(st.out, st.hub.epoch...)
	st.out = append(st.out, '.')
	st.out = strconv.AppendUint(st.out, seq, 10)
	switch {
	case !snap.Valid(now):
		state := "unavailable"
		if snap.Revoked {
			state = "revoked"
		}
		st.out = append(st.out, "\nevent: unavailable\ndata: {\"id\":"...)
		st.out = appendJSONString(st.out, wt.id)
		st.out = append(st.out, `,"state":`...)
		st.out = appendJSONString(st.out, state)
		st.out = append(st.out, '}')
	case wt.parent != "":
		in := expiresIn(snap, now)
		st.out = append(st.out, "\nevent: ticket\ndata: {\"id\":"...)
		st.out = appendJSONString(st.out, wt.parent)
		st.out = append(st.out, `,"type":`...)
		st.out = appendJSONString(st.out, wt.typ)
		st.out = append(st.out, `,"ticket":`...)
		st.out = appendJSONString(st.out, snap.Token)
		st.out = append(st.out, `,"expires_in":`...)
		st.out = strconv.AppendInt(st.out, in, 10)
		st.out = append(st.out, `,"expires_at":"`...)
		st.out = now.Add(time.Duration(in)*time.Second).UTC().AppendFormat(st.out, time.RFC3339)
		st.out = append(st.out, `"}`...)
	default:
		st.out = append(st.out, "\nevent: token\ndata: "...)
		st.out = appendToken(st.out, snap, now, expiresIn(snap, now), "")
		st.out = st.out[:len(st.out)-1] // appendToken ends the line
	}
	st.out = append(st.out, "\n\n"...)
}

// flush writes what add gathered, within the hub's write timeout.
func (st *stream) flush() error {
	if len(st.out) == 0 {
		return nil
	}
	st.rc.SetWriteDeadline(time.Now().Add(st.hub.writeTimeout))
	_, err := st.w.Write(st.out)
	if err == nil {
		err = st.rc.Flush()
	}
	st.out = st.out[:0]
	return err
}

// tooMany is a request over a per-client limit.
type tooMany struct{ msg string }

func (e *tooMany) Error() string { return e.msg }
