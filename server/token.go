package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// writeToken writes {"id","kind","access_token","expires_in","expires_at"},
// and "result" (what a report led to: replaced, refreshed, live) when
// result is not empty.
// expires_in and expires_at are one deadline in two forms: how long the
// caller may cache the token (see token.Snapshot.ServeUntil), rounded down
// to whole seconds.
//
// The body is built by hand: this is the hot path, and every string in it
// is JSON-safe (ids and kinds are validated by config, tokens by the
// upstream client), so no escaping is needed.
func writeToken(w http.ResponseWriter, s *token.Snapshot, result string) {
	now := time.Now()
	in := int64(s.ExpiresIn(now) / time.Second)
	b := make([]byte, 0, 128+len(s.Token))
	b = append(b, `{"id":"`...)
	b = append(b, s.ID...)
	b = append(b, `","kind":"`...)
	b = append(b, s.Kind...)
	b = append(b, `","access_token":"`...)
	b = append(b, s.Token...)
	b = append(b, `","expires_in":`...)
	b = strconv.AppendInt(b, in, 10)
	b = append(b, `,"expires_at":"`...)
	b = now.Add(time.Duration(in)*time.Second).UTC().AppendFormat(b, time.RFC3339)
	if result != "" {
		b = append(b, `","result":"`...)
		b = append(b, result...)
	}
	b = append(b, "\"}\n"...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.Write(b)
}

// status is one credential in GET /v1/tokens.
type status struct {
	ID           string       `json:"id"`
	Kind         string       `json:"kind"`
	Owner        string       `json:"component,omitempty"`
	State        string       `json:"state"`
	IssuedAt     *time.Time   `json:"issued_at,omitempty"`
	ExpiresAt    *time.Time   `json:"expires_at,omitempty"`
	NextRefresh  *time.Time   `json:"next_refresh,omitempty"`
	FetchesToday int          `json:"fetches_today"`
	ForcedToday  int          `json:"forced_today"`
	Cause        *token.Cause `json:"cause,omitempty"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	c, err := s.clients.authenticate(r)
	if err != nil {
		return err
	}
	now := time.Now()
	list := []status{}
	for _, id := range s.tokens.IDs() {
		snap, err := s.tokens.Snapshot(id)
		if err != nil || !c.allowed(id, snap.Owner) {
			continue
		}
		st := statusOf(snap, now)
		list = append(list, st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": list})
	return nil
}

func statusOf(snap *token.Snapshot, now time.Time) status {
	st := status{ID: snap.ID, Kind: snap.Kind, Owner: snap.Owner, State: "ok", FetchesToday: snap.Fetches,
		ForcedToday: snap.Forced, Cause: snap.Cause}
	switch {
	case snap.Revoked:
		st.State = "revoked"
	case !snap.Valid(now):
		st.State = "unavailable"
	case snap.Reported:
		st.State = "reported" // served, but a caller reported it dead and its refresh is failing
	}
	if snap.Token != "" {
		st.IssuedAt, st.ExpiresAt = utc(snap.IssuedAt), utc(snap.ExpiresAt)
	}
	if !snap.Revoked {
		st.NextRefresh = utc(snap.NextRefresh)
	}
	return st
}

func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
