package component

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// ErrWrongPlatform reports a push addressed to another component appid or
// suite.
var ErrWrongPlatform = errors.New("component: push for another platform")

// Handle acts on one decrypted push. It returns only once what the push
// carried is stored durably, so the caller may then answer "success";
// an error means WeChat should deliver it again. InfoTypes the platform
// does not act on are ignored without error.
func (p *Platform) Handle(ctx context.Context, ev callback.Event) error {
	for _, named := range []string{ev.AppID, ev.SuiteID} {
		if named != "" && named != p.cfg.AppID {
			return fmt.Errorf("%w: it names %.80q, and this %s is %s", ErrWrongPlatform, named, p.fam.kind, p.cfg.AppID)
		}
	}
	switch p.fam.events[ev.InfoType] {
	case onTicket:
		return p.onTicket(ctx, ev)
	case onAuthorized:
		return p.onAuthorized(ctx, subject(ev), code(ev))
	case onUnauthorized:
		return p.onUnauthorized(ctx, subject(ev))
	case onChanged:
		p.log.Info("authorization changed", "credential", AuthorizerID(p.cfg.ID, subject(ev)), p.fam.kind, p.cfg.ID)
		return nil
	}
	p.log.Debug("push ignored", "credential", p.cfg.ID, "info_type", ev.InfoType)
	return nil
}

func (p *Platform) onTicket(ctx context.Context, ev callback.Event) error {
	value, created := pushed(ev)
	t := ticket{Value: value, Created: created, ReceivedAt: time.Now()}
	stored, err := saveTicket(ctx, p.store, p.cfg.ID, t)
	if err != nil {
		return fmt.Errorf("%s %s: store %s: %w", p.fam.kind, p.cfg.ID, p.fam.ticket, err)
	}
	if stored {
		p.log.Debug("ticket stored", "credential", p.cfg.ID, "created", t.Created.UTC())
		p.tokens.Wake(p.cfg.ID)
	} else {
		p.log.Info("older ticket ignored", "credential", p.cfg.ID, "created", t.Created.UTC())
	}
	return nil
}

// onAuthorized exchanges the authorization code for the authorizer's
// durable state (and, where WeChat answers one, its first token), and
// stores it before anything is served. appid is the authorizer the push
// named, "" if it names none (WeCom's create_auth names the corp only
// in the exchange's answer).
func (p *Platform) onAuthorized(ctx context.Context, appid, code string) error {
	if (appid != "" && !validAppID(appid)) || code == "" || len(code) > 1024 {
		return fmt.Errorf("%w: authorization push with appid %.80q and a code of %d bytes", ErrInvalidImport, appid, len(code))
	}
	ct, err := p.tokens.Token(p.cfg.ID)
	if err != nil {
		return fmt.Errorf("%s %s: no token to exchange the authorization code: %w", p.fam.kind, p.cfg.ID, err)
	}
	// WeCom's create_auth names no corp: only the exchange tells it.
	what := "the authorization code"
	if appid != "" {
		what += " of " + appid
	}
	g, err := p.fam.exchange(ctx, p, ct.Token, code)
	if err != nil {
		return fmt.Errorf("%s %s: exchange %s: %w", p.fam.kind, p.cfg.ID, what, err)
	}
	if !validAppID(g.id) || g.state == "" {
		return fmt.Errorf("%s %s: %s answered authorizer %.80q and a %s of %d bytes",
			p.fam.kind, p.cfg.ID, what, g.id, p.fam.stateName, len(g.state))
	}
	if appid != "" && g.id != appid {
		return fmt.Errorf("%s %s: code for %s answered authorizer %s", p.fam.kind, p.cfg.ID, appid, g.id)
	}
	// The code is spent: what it bought must be stored even if WeChat
	// gives up on this push meanwhile, or the authorization is lost.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	id := AuthorizerID(p.cfg.ID, g.id)
	if g.token.Value == "" {
		// A new code for an authorizer held already (WeCom's
		// reset_permanent_code, an install anew) came without a token:
		// the one served stays valid until it expires, and is served
		// until the new code's first token replaces it, rather than
		// leave the authorizer without one meanwhile.
		if s, err := p.tokens.Snapshot(id); err == nil && !s.Revoked && s.Valid(time.Now()) {
			g.token = wechat.Token{Value: s.Token, ExpiresIn: time.Until(s.ExpiresAt)}
		}
	}
	if err := p.tokens.Add(sctx, p.authorizer(g.id), &token.Seed{Token: g.token, State: g.state}); err != nil {
		p.log.Error("authorization refused", "credential", id, p.fam.kind, p.cfg.ID, "err", err)
		return err
	}
	p.log.Info("authorized", append([]any{"credential", id, p.fam.kind, p.cfg.ID}, g.log...)...)
	return nil
}

func (p *Platform) onUnauthorized(ctx context.Context, appid string) error {
	if !validAppID(appid) {
		return fmt.Errorf("%w: unauthorization push for appid %.80q", ErrInvalidImport, appid)
	}
	id := AuthorizerID(p.cfg.ID, appid)
	if _, err := p.tokens.Snapshot(id); errors.Is(err, token.ErrUnknown) {
		return nil // never held here: nothing to revoke
	}
	if err := p.tokens.Revoke(ctx, id); err != nil {
		return fmt.Errorf("%s %s: revoke %s: %w", p.fam.kind, p.cfg.ID, appid, err)
	}
	p.log.Warn("unauthorized: authorizer revoked", "credential", id, p.fam.kind, p.cfg.ID)
	return nil
}

// PreAuth creates a pre_auth_code and the authorization page URL that
// sends the account owner back to redirectURI.
func (p *Platform) PreAuth(ctx context.Context, redirectURI string, authType int) (code string, expiresIn time.Duration, pageURL string, err error) {
	if p.fam != openPlatform {
		return "", 0, "", fmt.Errorf("%w: pre-auth codes are made for third-party platforms (kind component), not for kind %s",
			ErrInvalidImport, p.fam.kind)
	}
	ct, err := p.tokens.Token(p.cfg.ID)
	if err != nil {
		return "", 0, "", err
	}
	tok, err := p.up.PreAuthCode(ctx, ct.Token, p.cfg.AppID)
	if err != nil {
		return "", 0, "", err
	}
	return tok.Value, tok.ExpiresIn, authPage(p.cfg.AppID, tok.Value, redirectURI, authType), nil
}
