package token

import "time"

// Snapshot is a credential's state at one moment. It is immutable: the
// Manager replaces it whole, and readers may keep it.
type Snapshot struct {
	ID   string
	Kind string
	// Owner is the component of an authorizer; empty otherwise.
	Owner string
	// Revoked: the authorization was withdrawn; nothing is served.
	Revoked bool
	// Token is empty until the first successful fetch.
	Token     string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// ServeUntil is the last moment the token may be handed out or used:
	// a safety margin before its expiry and, for sources whose refresh
	// kills the previous token, before the end of the overlap that follows
	// our next planned refresh. A caller that caches the token no longer
	// than ServeUntil never holds a dead token.
	ServeUntil time.Time
	// NextRefresh is when the next fetch is planned.
	NextRefresh time.Time
	// Fetches and Forced count today's upstream calls (Beijing day).
	Fetches, Forced int
	// Cause is the last failure, nil after a success.
	Cause *Cause
	// Reported: a caller reported Token dead and no fetch has replaced
	// it yet (WeChat is failing, or the retry is due).
	Reported bool
}

// Valid reports whether the token may be handed out at now.
func (s *Snapshot) Valid(now time.Time) bool {
	return s.Token != "" && now.Before(s.ServeUntil)
}

// ExpiresIn is how long a caller may cache the token from now.
func (s *Snapshot) ExpiresIn(now time.Time) time.Duration {
	return max(s.ServeUntil.Sub(now), 0)
}

// snapshot builds the Snapshot of rec with the next refresh at next.
func (m *Manager) snapshot(e *entry, rec record, next time.Time, cause *Cause) *Snapshot {
	now := time.Now()
	s := &Snapshot{
		ID: e.cred.ID, Kind: e.cred.Kind, Owner: e.cred.Owner, Revoked: rec.Revoked,
		Token: rec.Token, IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt,
		NextRefresh: next,
		Cause:       cause,
		Reported:    rec.Reported,
	}
	s.Fetches, s.Forced = rec.today(now)
	if e.parentRevoked() {
		// Derived from a withdrawn authorization: not served, though
		// its record is kept for the authorization's return.
		s.Revoked, s.Token = true, ""
		return s
	}
	if rec.Token != "" {
		safety := margin(rec.ExpiresAt.Sub(rec.IssuedAt))
		s.ServeUntil = rec.ExpiresAt.Add(-safety)
		if (rec.Repeats && !e.cred.Stable) || e.cred.Repeating {
			// Nothing can replace it sooner: serve it to its expiry,
			// the moment its successor can first be fetched.
			s.ServeUntil = rec.ExpiresAt
		} else if e.cred.endsPrevious() {
			// Our next fetch kills this token Overlap later, and so
			// does one already begun (perhaps by a process that died
			// before it could store the new token).
			s.ServeUntil = minTime(s.ServeUntil, next.Add(m.cfg.Overlap-safety))
			if !rec.Fetching.IsZero() {
				s.ServeUntil = minTime(s.ServeUntil, rec.Fetching.Add(m.cfg.Overlap-safety))
			}
			if !rec.Fetching.IsZero() && rec.Reported {
				// A caller reported it dead and its replacement began,
				// perhaps in a process that died before storing it:
				// it is not handed out; a request waits for the
				// refresh instead (Await).
				s.ServeUntil = time.Time{}
			}
		}
	}
	return s
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
