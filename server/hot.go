package server

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wxtoken/wxtoken/token"
)

// GET /v1/tokens/{id} is the hot path: business servers ask for a token
// before each batch of WeChat calls, many times a second. It costs little
// next to net/http's own work on a request; the pieces here keep it so:
// routing without the mux, header values shared by every response, and
// the body of each token kept until the second it states changes.

// tokenPath is the path of GET /v1/tokens/{id} up to the id.
const tokenPath = "/v1/tokens/"

// Header values of every JSON answer. They are shared: net/http only
// reads a response's header values, and a handler that changes one
// replaces the slice (Header.Set) or appends past its capacity of one
// (Header.Add), which copies it.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// setJSONHeaders sets the headers of a JSON answer.
func setJSONHeaders(h http.Header) {
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
}

// hotPath is a Server's state for GET /v1/tokens/{id}.
type hotPath struct {
	// route: the request may be routed by fastTokenID rather than the
	// mux, as no other route could take a path fastTokenID accepts.
	route bool
	// namespaced: so may a two-segment path, {ns}/{id}, unless its second
	// segment is one of reserved, the literal second segments of other
	// routes (POST /v1/tokens/{id}/invalidate): the mux decides those.
	namespaced bool
	reserved   map[string]bool
	// routeID and routeNS are the indexes of the routes
	// GET /v1/tokens/{id} and GET /v1/tokens/{ns}/{id}, for the Observer.
	routeID, routeNS int
	seed             maphash.Seed
	// bodies holds the last body served for each id, in the slot its
	// hash picks; ids that share a slot take turns, each rebuilding its
	// body when the other has replaced it. A fixed number of slots keeps
	// the memory bounded however many authorizers come and go.
	bodies [256]atomic.Pointer[cachedBody]
}

// cachedBody is the answer for one snapshot within one second: its body
// depends only on the snapshot, expires_in and the second it is served in
// (expires_at is that second plus expires_in).
type cachedBody struct {
	snap *token.Snapshot
	unix int64 // the second, as Unix time
	in   int64 // expires_in
	body []byte
}

func newHotPath(eps []endpoint) *hotPath {
	h := &hotPath{seed: maphash.MakeSeed(), route: true, reserved: map[string]bool{}}
	ns, other := false, false // routes of two segments: GET {ns}/{id}, others
	for i, ep := range eps {
		rest, ok := strings.CutPrefix(ep.Path, tokenPath)
		if !ok {
			continue
		}
		switch first, second, two := strings.Cut(rest, "/"); {
		case !two:
			if ep.Method != http.MethodGet || rest != "{id}" {
				h.route = false
			} else {
				h.routeID = i
			}
		case strings.Contains(second, "/"):
			// Three segments or more: the fast route takes none.
		case ep.Method == http.MethodGet && first == "{ns}" && second == "{id}":
			ns = true
			h.routeNS = i
		case strings.HasPrefix(first, "{") && !strings.HasPrefix(second, "{"):
			h.reserved[second] = true // {id}/invalidate: the mux decides
		default:
			other = true
		}
	}
	h.namespaced = h.route && ns && !other
	return h
}

// fastTokenID returns the id of a request that the mux would give to
// getToken with the same path values, or false if the mux must route it.
// It takes GET only (the mux also gives it HEAD), and only a path that the
// mux would neither clean nor redirect: one non-empty segment after
// /v1/tokens/ that is not "." or "..", or, with namespaced ids, two such
// segments, the second not reserved, in a path with nothing escaped. Path
// is the unescaped path, so the id is the segment as the mux unescapes it;
// an escaped "/" (%2F) shows in Path as a "/", and goes to the mux.
func (h *hotPath) fastTokenID(r *http.Request) (string, bool) {
	if !h.route || r.Method != http.MethodGet {
		return "", false
	}
	id, ok := strings.CutPrefix(r.URL.Path, tokenPath)
	if !ok {
		return "", false
	}
	ns, rest, two := strings.Cut(id, "/")
	if !two {
		return id, segment(id)
	}
	if !h.namespaced || r.URL.RawPath != "" || !segment(ns) || !segment(rest) || strings.IndexByte(rest, '/') >= 0 || h.reserved[rest] {
		return "", false
	}
	return id, true
}

// segment reports whether s is a path segment the mux takes as it is.
func segment(s string) bool { return s != "" && s != "." && s != ".." }

// serveToken answers GET /v1/tokens/{id}, received at now (a clock
// reading the caller shares with the Observer: a reading costs more than
// the rest of the metrics). It returns the client the request
// authenticated, if any, for the Observer.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, id string, now time.Time) (*client, error) {
	c, err := s.authorizeToken(r, id)
	if err != nil {
		return c, err
	}
	// Snapshot and one clock reading are Token's check without its own
	// clock reading; any miss takes the full path, for Token's errors.
	snap, err := s.tokens.Snapshot(id)
	if err != nil || !snap.Valid(now) {
		if snap, err = s.tokens.Token(id); err != nil {
			// No valid token: wait briefly if a fetch is due or under way.
			if snap, err = s.tokens.Await(r.Context(), id); err != nil {
				return c, err
			}
		}
		now = time.Now()
	}
	in := expiresIn(snap, now)
	unix := now.Unix()
	slot := &s.hot.bodies[maphash.String(s.hot.seed, id)%uint64(len(s.hot.bodies))]
	b := slot.Load()
	if b == nil || b.snap != snap || b.unix != unix || b.in != in {
		b = &cachedBody{snap: snap, unix: unix, in: in, body: appendToken(nil, snap, now, in, "")}
		slot.Store(b)
	}
	setJSONHeaders(w.Header())
	w.Write(b.body)
	s.countRead(c, snap)
	return c, nil
}

// expiresIn is how long the caller may cache the token, in whole seconds
// rounded down (see token.Snapshot.ServeUntil).
func expiresIn(s *token.Snapshot, now time.Time) int64 {
	return int64(s.ExpiresIn(now) / time.Second)
}

// appendToken appends the token answer to b:
// {"id","kind","access_token","expires_in","expires_at"}, and "result"
// when result is not empty. expires_in and expires_at are one deadline in
// two forms, in whole seconds.
func appendToken(b []byte, s *token.Snapshot, now time.Time, in int64, result string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, s.Kind)
	b = append(b, `,"access_token":`...)
	b = appendJSONString(b, s.Token)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, in, 10)
	b = append(b, `,"expires_at":"`...)
	b = now.Add(time.Duration(in)*time.Second).UTC().AppendFormat(b, time.RFC3339)
	b = append(b, '"')
	if result != "" {
		b = append(b, `,"result":`...)
		b = appendJSONString(b, result)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it with HTML escaping off (as writeJSON encodes): '"', '\\' and
// control characters, invalid UTF-8 as U+FFFD, and U+2028 and U+2029,
// which JavaScript takes for line ends. Ids and tokens are plain ASCII
// (config and the upstream client check them), so the loop usually
// copies s whole.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
