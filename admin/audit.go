package admin

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Event is one entry of the audit log.
type Event struct {
	// ID is the entry's place in the log: entries sort by it, oldest
	// first, and GET /v1/admin/audit pages with it (before=ID).
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Actor is the admin key's name, "" when the request bore no key or
	// an unknown one.
	Actor string `json:"actor"`
	Role  string `json:"role,omitempty"`
	// Action is what was asked, e.g. credential.add, client.rotate.
	Action string `json:"action"`
	// Target is the credential id or client name acted on.
	Target string `json:"target,omitempty"`
	// Result is ok, refused (the request was not allowed or not valid;
	// nothing changed) or failed (allowed, but it did not succeed).
	Result string `json:"result"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Remote string `json:"remote,omitempty"`
}

// Results of an Event.
const (
	ResultOK      = "ok"
	ResultRefused = "refused"
	ResultFailed  = "failed"
)

// auditLog appends Events to the store, never changing or deleting one.
type auditLog struct {
	st  store.Store
	now func() time.Time

	// Refusals of requests without a valid key are recorded at most
	// anonBurst a minute, so that anyone who can reach the port cannot
	// fill the store; the rest are counted and the count is recorded with
	// the next one that is.
	mu         sync.Mutex
	anonWindow time.Time
	anonCount  int
	suppressed int
}

const anonBurst = 60

// Record appends ev to the audit log, stamping its ID and time: how the
// dashboard records its logins and failed logins, which do not pass
// through the admin API. An event without an Actor and with Result
// ResultRefused counts against the limit on anonymous refusals.
func (a *Admin) Record(ctx context.Context, ev Event) error {
	return a.audit.append(ctx, ev)
}

// append records ev, stamping its ID and time.
func (l *auditLog) append(ctx context.Context, ev Event) error {
	if ev.Actor == "" && ev.Result == ResultRefused {
		l.mu.Lock()
		now := l.now()
		if now.Sub(l.anonWindow) >= time.Minute {
			l.anonWindow, l.anonCount = now, 0
		}
		l.anonCount++
		if l.anonCount > anonBurst {
			l.suppressed++
			l.mu.Unlock()
			return nil
		}
		if l.suppressed > 0 {
			ev.Detail = strings.TrimSpace(fmt.Sprintf("%s (and %d more refusals without a valid key, not recorded one by one)", ev.Detail, l.suppressed))
			l.suppressed = 0
		}
		l.mu.Unlock()
	}
	ev.Time = l.now().UTC()
	var r [8]byte
	rand.Read(r[:])
	ev.ID = fmt.Sprintf("%020d-%016x", ev.Time.UnixNano(), binary.BigEndian.Uint64(r[:]))
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = l.st.Put(ctx, auditPrefix+ev.ID, b, 0)
	return err
}

// Filter selects audit events; empty fields match everything.
type Filter struct {
	Actor, Action, Target, Result string
	// Before: only events older than this ID (the last one of the page
	// before); "" starts at the newest.
	Before string
	Limit  int
}

func (f *Filter) match(ev *Event) bool {
	return (f.Actor == "" || ev.Actor == f.Actor) &&
		(f.Action == "" || ev.Action == f.Action || strings.HasPrefix(ev.Action, f.Action+".")) &&
		(f.Target == "" || ev.Target == f.Target) &&
		(f.Result == "" || ev.Result == f.Result)
}

// list returns up to f.Limit matching events, newest first, and the ID to
// ask the next page with ("" when there is none).
func (l *auditLog) list(ctx context.Context, f Filter) ([]Event, string, error) {
	keys, err := l.st.List(ctx, auditPrefix)
	if err != nil {
		return nil, "", err
	}
	out := []Event{}
	for i := len(keys) - 1; i >= 0; i-- {
		id := strings.TrimPrefix(keys[i], auditPrefix)
		if f.Before != "" && id >= f.Before {
			continue
		}
		e, err := l.st.Get(ctx, keys[i])
		if err != nil {
			continue // pruned meanwhile
		}
		var ev Event
		if json.Unmarshal(e.Value, &ev) != nil || !f.match(&ev) {
			continue
		}
		if len(out) == f.Limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, ev)
	}
	return out, "", nil
}
