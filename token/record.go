package token

import (
	"encoding/json"
	"sync"
	"time"
	"unique"
)

// record is what the store keeps for a credential under "token/<id>":
// the token, its plan, the day's counters and the last failure. Every
// instance reads the same plan, so they agree on when a token will be
// replaced and therefore on how long callers may cache it.
type record struct {
	Token     string    `json:"token,omitempty"`
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RefreshAt is the planned proactive refresh.
	RefreshAt time.Time `json:"refresh_at,omitzero"`

	// Day is the Beijing date the counters below belong to.
	Day       string    `json:"day,omitempty"`
	Fetches   int       `json:"fetches,omitempty"` // upstream calls made that day
	Forced    int       `json:"forced,omitempty"`  // stable force refreshes that day
	LastFetch time.Time `json:"last_fetch,omitzero"`
	LastForce time.Time `json:"last_force,omitzero"`

	// Cause is the last failure, kept until a fetch succeeds.
	Cause *Cause `json:"cause,omitempty"`
	// BlockedUntil stops fetching (daily quota, configuration error).
	BlockedUntil time.Time `json:"blocked_until,omitzero"`
	// Fingerprint is the credential's settings when the block was set.
	Fingerprint string `json:"fingerprint,omitempty"`
	// RetryAt is the earliest next attempt after a failure. It lives in
	// the shared record so that the backoff belongs to the credential,
	// not to an instance: every instance that adopts a failure waits for
	// the same moment, and the cluster makes one call per backoff step.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Fetching is when a fetch that replaces Token began, written before
	// the call and cleared with its result. WeChat's classic and WeCom
	// endpoints issue a new token on each call and end the previous one
	// about 5 minutes (Overlap) later; if the process dies between the
	// call and the write, the stored token is known to die at Fetching +
	// Overlap, and the next start refreshes at once.
	Fetching time.Time `json:"fetching,omitzero"`
	// Reported: a caller reported Token dead (40001, 42001) and a refresh
	// was accepted for it. It stays set until a fetch succeeds, and the
	// credential retries on its backoff rather than its refresh plan.
	Reported bool `json:"reported,omitempty"`
	// Repeats: the source answered a fetch with the token it had issued
	// already (WeCom's gettoken may hand out the same token until it
	// expires), so no fetch can replace it before ExpiresAt, and none
	// ends it early: it is served to its expiry and replaced just after.
	Repeats bool `json:"repeats,omitempty"`
	// Revoked marks an authorization withdrawn: never refreshed or served.
	// (Beside the other flags, so that the struct, held for each of a
	// platform's authorizers, has no padding between them.)
	Revoked bool `json:"revoked,omitempty"`
	// Checked is when WeChat last confirmed Token works, asked because a
	// caller reported it: further reports soon after are answered from
	// it, on every instance, without asking again.
	Checked time.Time `json:"checked,omitzero"`

	// State is a StatefulSource's durable value (an authorizer's refresh
	// token). It is written in the same compare-and-swap as the token it
	// produced, so a crash can never keep one without the other.
	State string `json:"state,omitempty"`
	// Owner and Kind describe credentials created at run time (an
	// authorizer belongs to a component), so they are found again at start.
	Owner string `json:"owner,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// Cause is why a credential has no fresh token, as shown in status.
type Cause struct {
	// Class is wechat.Class's name: "retry", "config", "daily_quota", ...
	Class   string    `json:"class"`
	ErrCode int       `json:"errcode,omitempty"`
	Message string    `json:"message"`
	Since   time.Time `json:"since"`
	// Failures counts consecutive failed attempts.
	Failures int `json:"failures"`
}

func recordKey(id string) string { return "token/" + id }

// decodeRecord decodes a stored record, binary (codec.go) or, as earlier
// versions wrote it, JSON.
func decodeRecord(b []byte) (record, error) {
	// Decoding through a pointer would put every record decoded on the
	// heap, only to be copied out: 350 bytes of garbage a read, and a
	// start reads 100,000 of them at once.
	p := decoding.Get().(*record)
	var err error
	if len(b) > 0 && b[0] == '{' {
		err = json.Unmarshal(b, p)
	} else {
		err = decodeBinary(b, p)
	}
	r := *p
	*p = record{}
	decoding.Put(p)
	// A platform's authorizers share their owner, kind and day: held
	// for each of 100,000 credentials, one copy of each will do.
	r.Owner, r.Kind, r.Day = intern(r.Owner), intern(r.Kind), intern(r.Day)
	return r, err
}

// decoding holds the records decodeRecord decodes into.
var decoding = sync.Pool{New: func() any { return new(record) }}

func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// beijing is UTC+8 without daylight saving: WeChat's quotas reset at its
// midnight.
var beijing = time.FixedZone("CST", 8*60*60)

func beijingDay(t time.Time) string { return t.In(beijing).Format(time.DateOnly) }

// nextBeijingMidnight is when the daily quota next resets.
func nextBeijingMidnight(t time.Time) time.Time {
	y, m, d := t.In(beijing).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, beijing)
}

// countFetch records one upstream call at now, starting a new day's
// counters when the Beijing date has changed.
func (r *record) countFetch(now time.Time, forced bool) {
	if day := beijingDay(now); r.Day != day {
		r.Day, r.Fetches, r.Forced = day, 0, 0
	}
	r.Fetches++
	r.LastFetch = now
	if forced {
		r.Forced++
		r.LastForce = now
	}
}

// today returns the counters for now's Beijing day.
func (r *record) today(now time.Time) (fetches, forced int) {
	if r.Day != beijingDay(now) {
		return 0, 0
	}
	return r.Fetches, r.Forced
}
