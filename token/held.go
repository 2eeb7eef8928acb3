package token

import "time"

// held is a record as an entry keeps it in memory between reads and
// writes: the same fields, with times as Unix nanoseconds (8 bytes where
// a time.Time takes 24) and the day's counters as int32. An entry is kept
// for each of a platform's 100,000 authorizers, and a record's nine
// times were a quarter of the entry. Times come back in the local zone
// without a monotonic reading: the same instants, compared on the wall
// clock as records read from the store are.
type held struct {
	Token, State, Day, Fingerprint, Owner, Kind string
	Cause                                       *Cause

	IssuedAt, ExpiresAt, RefreshAt, LastFetch, LastForce int64
	BlockedUntil, RetryAt, Fetching, Checked             int64

	Fetches, Forced            int32
	Reported, Repeats, Revoked bool
}

// hold returns r as an entry keeps it.
func hold(r record) held {
	return held{
		Token: r.Token, State: r.State, Day: r.Day, Fingerprint: r.Fingerprint, Owner: r.Owner, Kind: r.Kind,
		Cause:    r.Cause,
		IssuedAt: stamp(r.IssuedAt), ExpiresAt: stamp(r.ExpiresAt), RefreshAt: stamp(r.RefreshAt),
		LastFetch: stamp(r.LastFetch), LastForce: stamp(r.LastForce), BlockedUntil: stamp(r.BlockedUntil),
		RetryAt: stamp(r.RetryAt), Fetching: stamp(r.Fetching), Checked: stamp(r.Checked),
		Fetches: int32(r.Fetches), Forced: int32(r.Forced),
		Reported: r.Reported, Repeats: r.Repeats, Revoked: r.Revoked,
	}
}

// record returns the record h holds.
func (h *held) record() record {
	return record{
		Token: h.Token, State: h.State, Day: h.Day, Fingerprint: h.Fingerprint, Owner: h.Owner, Kind: h.Kind,
		Cause:    h.Cause,
		IssuedAt: unstamp(h.IssuedAt), ExpiresAt: unstamp(h.ExpiresAt), RefreshAt: unstamp(h.RefreshAt),
		LastFetch: unstamp(h.LastFetch), LastForce: unstamp(h.LastForce), BlockedUntil: unstamp(h.BlockedUntil),
		RetryAt: unstamp(h.RetryAt), Fetching: unstamp(h.Fetching), Checked: unstamp(h.Checked),
		Fetches: int(h.Fetches), Forced: int(h.Forced),
		Reported: h.Reported, Repeats: h.Repeats, Revoked: h.Revoked,
	}
}

// stamp is t in Unix nanoseconds, 0 for the zero time.
func stamp(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func unstamp(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
