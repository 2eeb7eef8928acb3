package token

import (
	"context"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/wechat"
)

// A caller's report that a token failed (40001, 40014, 42001) is checked
// with WeChat before it costs a fetch: a token reported by mistake, or by
// a client that mixed up accounts, must not spend the daily quota, and a
// token WeChat really ended early (another system fetched with the
// secret; WeCom may end tokens at will) must be replaced at once rather
// than after the interval between forced refreshes.

// Result says what a report of a token led to.
type Result int

const (
	// Kept: nothing replaced the token (a planned refresh found it was
	// not yet due; never the answer to a report).
	Kept Result = iota
	// Replaced: the token had already been replaced; WeChat was not
	// called for it.
	Replaced
	// Refreshed: a fetch replaced the token.
	Refreshed
	// Live: WeChat confirmed the token still works; nothing was fetched.
	Live
)

// String names the result as the API shows it.
func (r Result) String() string {
	switch r {
	case Replaced:
		return "replaced"
	case Refreshed:
		return "refreshed"
	case Live:
		return "live"
	}
	return "kept"
}

// checkReuse is how long a check of a token answers further reports of
// it. Reports a storm brings to one instance wait on that instance's one
// check; this window covers the ones the storm brings to the other
// instances, which queue on the lease. It is short, since a token WeChat
// confirmed may be ended a moment later.
const checkReuse = 3 * time.Second

type verdict int

const (
	verdictUnknown verdict = iota // no check, or the check failed
	verdictLive
	verdictDead
)

// verify asks WeChat whether rec.Token, which a caller reported, still
// works. It runs inside the credential's flight and under its lease, so
// reports of one token cost one check however many callers and
// instances make them; a check recorded by any instance within
// checkReuse answers without another.
func (m *Manager) verify(ctx context.Context, e *entry, rec record, now time.Time) verdict {
	c, ok := e.cred.Source.(Checker)
	if !ok || rec.Token == "" {
		return verdictUnknown
	}
	if !rec.Checked.IsZero() && now.Sub(rec.Checked) < checkReuse {
		return verdictLive
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.FetchTimeout)
	defer cancel()
	err := c.Check(ctx, rec.Token)
	switch {
	case err == nil:
		return verdictLive
	case wechat.Classify(err) == wechat.Stale:
		m.log.Info("reported token refused by WeChat", "credential", e.cred.ID, "kind", e.cred.Kind,
			"errcode", wechat.ErrCode(err), "token", prefix(rec.Token))
		return verdictDead
	}
	m.log.Debug("could not check a reported token", "credential", e.cred.ID, "err", err)
	return verdictUnknown
}

// confirmedLive answers a report of a token WeChat accepts: the token
// stays, and the check is recorded for the other instances.
func (m *Manager) confirmedLive(ctx context.Context, e *entry, rec record, ver uint64, now time.Time) outcome {
	o := outcome{rec: rec, ver: ver, next: m.planned(e, rec, now), live: true}
	if !rec.Reported && !rec.Checked.IsZero() && now.Sub(rec.Checked) < checkReuse {
		return o
	}
	rec.Checked, rec.Reported = now, false
	if nv, err := m.cfg.Store.Put(ctx, recordKey(e.cred.ID), rec.encode(), ver); err == nil {
		o.rec, o.ver = rec, nv
	} else if !errors.Is(err, store.ErrConflict) {
		m.log.Debug("could not record a token check", "credential", e.cred.ID, "err", err)
	}
	return o
}
