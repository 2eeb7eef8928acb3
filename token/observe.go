package token

import "time"

// Observer is told what the Manager does, for metrics. Its methods are
// called on the refresh and report paths: they must be quick, must not
// block and must not call the Manager.
type Observer interface {
	// Refreshed reports one refresh that called WeChat or failed: the
	// credential's kind, the result ("ok", or the failure's class, as a
	// Cause names it), WeChat's errcode (0 if none) and how long it took.
	// A refresh that adopted a peer's token without a call is not one.
	Refreshed(kind, result string, errcode int, d time.Duration)
	// Reported reports a caller's report of a dead token and what came of
	// it: a Result's name, or "refused" when it was not acted on.
	Reported(kind, result string)
}

// observe reports a refresh to the Observer, if there is one.
func (m *Manager) observe(e *entry, o outcome, d time.Duration) {
	obs := m.cfg.Observer
	if obs == nil || (o.err == nil && !o.fetched) {
		return
	}
	c := o.cause
	if c == nil {
		c = o.rec.Cause
	}
	switch {
	case o.err == nil:
		obs.Refreshed(e.cred.Kind, "ok", 0, d)
	case c != nil:
		obs.Refreshed(e.cred.Kind, c.Class, c.ErrCode, d)
	default:
		obs.Refreshed(e.cred.Kind, "refused", 0, d)
	}
}
