package server

import (
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// writeToken writes the token answer (see appendToken) with the result of
// a report: replaced, refreshed or live.
func writeToken(w http.ResponseWriter, s *token.Snapshot, result string) {
	now := time.Now()
	b := appendToken(make([]byte, 0, 160+len(s.Token)), s, now, expiresIn(s, now), result)
	setJSONHeaders(w.Header())
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
