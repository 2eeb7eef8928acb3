package component

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/callback"
	"github.com/wxtoken/wxtoken/token"
)

// ErrWrongPlatform reports a push addressed to another component appid.
var ErrWrongPlatform = errors.New("component: push for another platform")

// Handle acts on one decrypted push. It returns only once what the push
// carried is stored durably, so the caller may then answer "success";
// an error means WeChat should deliver it again. Unknown InfoTypes are
// ignored without error.
func (p *Platform) Handle(ctx context.Context, ev callback.Event) error {
	if ev.AppID != "" && ev.AppID != p.cfg.AppID {
		return ErrWrongPlatform
	}
	switch ev.InfoType {
	case callback.InfoComponentVerifyTicket:
		return p.onTicket(ctx, ev)
	case callback.InfoAuthorized, callback.InfoUpdateAuthorized:
		return p.onAuthorized(ctx, ev.AuthorizerAppID, ev.AuthorizationCode)
	case callback.InfoUnauthorized:
		return p.onUnauthorized(ctx, ev.AuthorizerAppID)
	}
	p.log.Debug("push ignored", "credential", p.cfg.ID, "info_type", ev.InfoType)
	return nil
}

func (p *Platform) onTicket(ctx context.Context, ev callback.Event) error {
	t := ticket{Value: ev.ComponentVerifyTicket, Created: time.Unix(ev.CreateTime, 0), ReceivedAt: time.Now()}
	stored, err := saveTicket(ctx, p.store, p.cfg.ID, t)
	if err != nil {
		return fmt.Errorf("component %s: store ticket: %w", p.cfg.ID, err)
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
// tokens and stores its refresh token before anything is served.
func (p *Platform) onAuthorized(ctx context.Context, appid, code string) error {
	if !validAppID(appid) || code == "" {
		return fmt.Errorf("%w: authorization push with appid %.80q and a code of %d bytes", ErrInvalidImport, appid, len(code))
	}
	ct, err := p.tokens.Token(p.cfg.ID)
	if err != nil {
		return fmt.Errorf("component %s: no component token to query the authorization: %w", p.cfg.ID, err)
	}
	auth, err := p.up.QueryAuth(ctx, ct.Token, p.cfg.AppID, code)
	if err != nil {
		return fmt.Errorf("component %s: api_query_auth for %s: %w", p.cfg.ID, appid, err)
	}
	if auth.AuthorizerAppID != appid {
		return fmt.Errorf("component %s: code for %s answered authorizer %s", p.cfg.ID, appid, auth.AuthorizerAppID)
	}
	// The code is spent: what it bought must be stored even if WeChat
	// gives up on this push meanwhile, or the authorization is lost.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = p.tokens.Add(sctx, p.authorizer(appid), &token.Seed{Token: auth.Token, State: auth.RefreshToken})
	if err != nil {
		p.log.Error("authorization refused", "credential", AuthorizerID(p.cfg.ID, appid), "component", p.cfg.ID, "err", err)
		return err
	}
	p.log.Info("authorized", "credential", AuthorizerID(p.cfg.ID, appid), "component", p.cfg.ID, "func_info", auth.FuncInfo)
	return nil
}

func (p *Platform) onUnauthorized(ctx context.Context, appid string) error {
	id := AuthorizerID(p.cfg.ID, appid)
	if _, err := p.tokens.Snapshot(id); errors.Is(err, token.ErrUnknown) {
		return nil // never held here: nothing to revoke
	}
	if err := p.tokens.Revoke(ctx, id); err != nil {
		return fmt.Errorf("component %s: revoke %s: %w", p.cfg.ID, appid, err)
	}
	p.log.Warn("unauthorized: authorizer revoked", "credential", id, "component", p.cfg.ID)
	return nil
}

// PreAuth creates a pre_auth_code and the authorization page URL that
// sends the account owner back to redirectURI.
func (p *Platform) PreAuth(ctx context.Context, redirectURI string, authType int) (code string, expiresIn time.Duration, pageURL string, err error) {
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
