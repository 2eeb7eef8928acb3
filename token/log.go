package token

import (
	"context"
	"log/slog"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
)

// logRefresh writes one line per refresh that reached WeChat or failed.
// A repeated failure with the same cause is logged at debug level, so a
// long outage is logged once, not every retry.
func (m *Manager) logRefresh(e *entry, f *flight, o outcome, d time.Duration) {
	s := f.snap
	attrs := []any{"credential", e.cred.ID, "kind", e.cred.Kind, "force", f.force, "duration", d.Round(time.Millisecond)}
	c := o.cause
	if c == nil {
		c = o.rec.Cause
	}
	switch {
	case o.err == nil && !o.fetched:
		m.log.Debug("refresh adopted", append(attrs, "token", prefix(s.Token), "next", s.NextRefresh.UTC())...)
	case o.err == nil:
		m.log.Info("refresh", append(attrs, "result", "ok", "token", prefix(s.Token), "expires_at", s.ExpiresAt.UTC(), "next", s.NextRefresh.UTC())...)
	case c != nil:
		level := slog.LevelWarn
		switch {
		case c.Class == wechat.Revoked.String():
			level = slog.LevelError // an authorization is lost: say it loudly, every time
		case c.Failures > 1:
			level = slog.LevelDebug
		}
		m.log.Log(context.Background(), level, "refresh", append(attrs, "result", c.Class, "errcode", c.ErrCode,
			"err", c.Message, "failures", c.Failures, "next", o.next.UTC())...)
	default:
		m.log.Info("refresh", append(attrs, "result", "refused", "err", o.err.Error())...)
	}
}

// prefix is what logs show of a token: enough to tell two apart.
func prefix(tok string) string {
	if len(tok) <= 8 {
		return tok
	}
	return tok[:8] + "…"
}
