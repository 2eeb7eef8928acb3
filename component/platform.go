package component

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Kinds of the credentials this package creates.
const (
	KindComponent  = "component"
	KindAuthorizer = "authorizer"
)

// Tokens is what a Platform needs of the token manager.
type Tokens interface {
	Token(id string) (*token.Snapshot, error)
	Snapshot(id string) (*token.Snapshot, error)
	Add(ctx context.Context, c token.Credential, seed *token.Seed) error
	Revoke(ctx context.Context, id string) error
	Restore(ctx context.Context, owner string, mk func(id string) token.Credential) (int, error)
	Wake(id string)
}

var _ Tokens = (*token.Manager)(nil)

// Config is one third-party platform.
type Config struct {
	// ID names the platform's component credential.
	ID string
	// AppID and Secret are the platform's component_appid and secret.
	AppID, Secret string
	// PushInterval bounds how often api_start_push_ticket is called when
	// no usable ticket is held (default 10m, WeChat's push period).
	PushInterval time.Duration
	// Tickets returns the credentials derived from the token of the
	// authorizer id, of appid (its JS-SDK tickets), added and restored
	// with it; nil for none. Their ids must extend the authorizer's.
	Tickets func(id, appid string) []token.Credential
}

// Platform is one third-party platform's ticket and authorizers.
type Platform struct {
	cfg    Config
	up     *wechat.Client
	store  store.Store
	tokens Tokens
	log    *slog.Logger

	mu       sync.Mutex
	lastPush time.Time // last api_start_push_ticket call
}

// New returns a Platform. Credential must be given to the token manager
// before Start.
func New(cfg Config, up *wechat.Client, s store.Store, log *slog.Logger) *Platform {
	if cfg.PushInterval <= 0 {
		cfg.PushInterval = 10 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &Platform{cfg: cfg, up: up, store: s, log: log}
}

// ID is the platform's credential id.
func (p *Platform) ID() string { return p.cfg.ID }

// AppID is the platform's component_appid.
func (p *Platform) AppID() string { return p.cfg.AppID }

// Credential is the component_access_token credential.
func (p *Platform) Credential() token.Credential {
	return token.Credential{ID: p.cfg.ID, Kind: KindComponent, Source: (*componentSource)(p),
		Fingerprint: token.Fingerprint(KindComponent, p.cfg.AppID, p.cfg.Secret, p.up.API)}
}

// Start attaches the token manager and brings back the authorizers stored
// in earlier runs.
func (p *Platform) Start(ctx context.Context, tokens Tokens) error {
	p.tokens = tokens
	n, err := tokens.Restore(ctx, p.cfg.ID, p.authorizer)
	if err != nil {
		return fmt.Errorf("component %s: restore authorizers: %w", p.cfg.ID, err)
	}
	p.log.Info("component started", "credential", p.cfg.ID, "authorizers", n)
	return nil
}

// AuthorizerID is the credential id of the authorizer appid of the
// platform whose credential id is platform: "{platform}/{appid}". The
// platform's id is its namespace, so one account may be authorized to
// several platforms, and be configured with its own AppSecret too, each
// credential apart. While only one platform holds an appid, the token
// manager also answers to the bare appid, the id authorizers had before.
func AuthorizerID(platform, appid string) string { return platform + "/" + appid }

// authorizer is the credential of one authorizer of this platform, by its
// appid or its id (as the token manager restores it: an authorizer stored
// before ids had namespaces is restored by its appid, and moved).
func (p *Platform) authorizer(id string) token.Credential {
	appid := strings.TrimPrefix(id, p.cfg.ID+"/")
	c := token.Credential{ID: AuthorizerID(p.cfg.ID, appid), Kind: KindAuthorizer, Owner: p.cfg.ID, Parent: p.cfg.ID,
		Source: &authorizerSource{p: p, appid: appid}}
	if p.cfg.Tickets != nil {
		c.Children = p.cfg.Tickets(c.ID, appid)
	}
	return c
}

// componentSource fetches the component_access_token with the stored
// ticket, asking WeChat to push one when there is none.
type componentSource Platform

// Fetch implements token.Source. It is called by one refresh at a time.
func (s *componentSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	p := (*Platform)(s)
	t, _, err := loadTicket(ctx, p.store, p.cfg.ID)
	if err != nil {
		return token.Fetched{}, err
	}
	now := time.Now()
	if !t.usable(now) {
		p.askForTicket(ctx, "no usable component_verify_ticket")
		return token.Fetched{}, fmt.Errorf("%w (%w)", wechat.ErrNoTicket, token.ErrNotCalled)
	}
	if age := now.Sub(t.ReceivedAt); age > 3*p.cfg.PushInterval {
		// Still usable, but WeChat has missed several pushes: the
		// authorization-event URL may be broken. Ask, and say so.
		p.askForTicket(ctx, fmt.Sprintf("no ticket pushed for %s", age.Round(time.Minute)))
	}
	tok, err := p.up.ComponentToken(ctx, p.cfg.AppID, p.cfg.Secret, t.Value)
	return token.Fetched{Token: tok}, err
}

// askForTicket calls api_start_push_ticket at most once per PushInterval.
func (p *Platform) askForTicket(ctx context.Context, why string) {
	p.mu.Lock()
	if time.Since(p.lastPush) < p.cfg.PushInterval {
		p.mu.Unlock()
		return
	}
	p.lastPush = time.Now()
	p.mu.Unlock()
	err := p.up.StartPushTicket(ctx, p.cfg.AppID, p.cfg.Secret)
	p.log.Warn(why+"; asked WeChat to push one", "credential", p.cfg.ID,
		"errcode", wechat.ErrCode(err), "err", errString(err))
}

// authorizerSource refreshes an authorizer's token with its refresh token
// (the credential's durable state) and the platform's component token (its
// parent's token, handed in by the manager).
type authorizerSource struct {
	p     *Platform
	appid string
}

// Fetch implements token.Source. A refusal of the component token (40001,
// 42001, 40014) is returned as WeChat gave it: the manager reports the
// component token and retries this authorizer once it is replaced.
func (s *authorizerSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	if req.State == "" {
		return token.Fetched{}, &wechat.APIError{ErrCode: wechat.CodeRefreshInvalid, ErrMsg: "no authorizer_refresh_token stored"}
	}
	tok, next, err := s.p.up.AuthorizerToken(ctx, req.Parent, s.p.cfg.AppID, s.appid, req.State)
	return token.Fetched{Token: tok, State: next}, err
}

// Check implements token.Checker: an authorizer's access token is an
// account's token, which getcallbackip accepts like any other.
func (s *authorizerSource) Check(ctx context.Context, tok string) error {
	_, err := s.p.up.CallbackIP(ctx, tok)
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
