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
	// KindSuite is a WeCom suite's suite_access_token, and KindAuthCorp
	// the token of a corp that installed the suite.
	KindSuite    = "suite"
	KindAuthCorp = "authcorp"
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
	// PermanentCodeV1 has a suite exchange its auth codes at the v1
	// get_permanent_code, which also answers the corp's first token,
	// rather than the v2 WeCom recommends.
	PermanentCodeV1 bool
}

// Platform is one third-party platform's (or WeCom suite's) ticket and
// authorizers.
type Platform struct {
	cfg    Config
	fam    *family
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
	return newPlatform(openPlatform, cfg, up, s, log)
}

func newPlatform(fam *family, cfg Config, up *wechat.Client, s store.Store, log *slog.Logger) *Platform {
	if cfg.PushInterval <= 0 {
		cfg.PushInterval = 10 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	return &Platform{cfg: cfg, fam: fam, up: up, store: s, log: log}
}

// ID is the platform's credential id.
func (p *Platform) ID() string { return p.cfg.ID }

// AppID is the platform's component_appid, or the suite's id.
func (p *Platform) AppID() string { return p.cfg.AppID }

// Kind is the kind of the platform's credential: component or suite.
func (p *Platform) Kind() string { return p.fam.kind }

// Credential is the platform's own token credential: the
// component_access_token, or the suite_access_token.
func (p *Platform) Credential() token.Credential {
	return token.Credential{ID: p.cfg.ID, Kind: p.fam.kind, Source: (*platformSource)(p),
		Fingerprint: token.Fingerprint(p.fam.kind, p.cfg.AppID, p.cfg.Secret, p.fam.host(p.up))}
}

// Start attaches the token manager and brings back the authorizers stored
// in earlier runs.
func (p *Platform) Start(ctx context.Context, tokens Tokens) error {
	p.tokens = tokens
	n, err := tokens.Restore(ctx, p.cfg.ID, p.authorizer)
	if err != nil {
		return fmt.Errorf("%s %s: restore authorizers: %w", p.fam.kind, p.cfg.ID, err)
	}
	p.log.Info(p.fam.kind+" started", "credential", p.cfg.ID, "authorizers", n)
	p.wakeForStoredTicket(ctx)
	return nil
}

// wakeForStoredTicket fetches the platform's token now if it waits for a
// ticket that is stored already. A push wakes only the instance that
// answered it, and only in memory: if that instance died between
// answering "success" and fetching, the stored record still plans the
// retry of the failure before the push (TicketRetry away). WeChat will
// not push that ticket again, and WeCom has no API to ask for one.
func (p *Platform) wakeForStoredTicket(ctx context.Context) {
	s, err := p.tokens.Snapshot(p.cfg.ID)
	if err != nil || s.Cause == nil || s.Cause.Class != wechat.Ticket.String() {
		return
	}
	if t, _, err := loadTicket(ctx, p.store, p.cfg.ID); err == nil && t.usable(time.Now(), p.fam.ticketLife) {
		p.tokens.Wake(p.cfg.ID)
	}
}

// AuthorizerID is the credential id of the authorizer appid of the
// platform whose credential id is platform: "{platform}/{appid}". The
// platform's id is its namespace, so one account may be authorized to
// several platforms, and be configured with its own AppSecret too, each
// credential apart. While only one platform holds an appid, the token
// manager also answers to the bare appid, the id authorizers had before.
func AuthorizerID(platform, appid string) string { return platform + "/" + appid }

// authorizer is the credential of one authorizer of this platform, by its
// appid (corpid) or its id (as the token manager restores it: an
// authorizer stored before ids had namespaces is restored by its appid,
// and moved).
func (p *Platform) authorizer(id string) token.Credential {
	appid := strings.TrimPrefix(id, p.cfg.ID+"/")
	c := token.Credential{ID: AuthorizerID(p.cfg.ID, appid), Kind: p.fam.childKind, Owner: p.cfg.ID, Parent: p.cfg.ID,
		Source: &authorizerSource{p: p, appid: appid}}
	if p.fam.independent {
		c.Parent = ""
	}
	if p.cfg.Tickets != nil {
		c.Children = p.cfg.Tickets(c.ID, appid)
	}
	return c
}

// platformSource fetches the platform's token with the stored ticket,
// asking WeChat to push one when there is none and it can be asked.
type platformSource Platform

// Fetch implements token.Source. It is called by one refresh at a time.
func (s *platformSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	p := (*Platform)(s)
	t, _, err := loadTicket(ctx, p.store, p.cfg.ID)
	if err != nil {
		return token.Fetched{}, err
	}
	now := time.Now()
	if !t.usable(now, p.fam.ticketLife) {
		why := "no usable " + p.fam.ticket
		switch {
		case t.Value == "":
			why = "no " + p.fam.ticket + " received yet"
		case t.Refused:
			why = p.fam.ticket + " refused by WeChat"
		}
		p.askForTicket(ctx, why, t.Value != "")
		return token.Fetched{}, fmt.Errorf("%w: %s (%w)", wechat.ErrNoTicket, why, token.ErrNotCalled)
	}
	if age := now.Sub(t.ReceivedAt); age > 3*p.cfg.PushInterval {
		// Still usable, but WeChat has missed several pushes: the
		// callback URL may be broken. Ask, and say so.
		p.askForTicket(ctx, fmt.Sprintf("no %s pushed for %s", p.fam.ticket, age.Round(time.Minute)), true)
	}
	tok, err := p.fam.token(ctx, p, t.Value)
	if wechat.Classify(err) == wechat.Ticket {
		// WeChat refused the newest ticket we hold: using it again
		// would be refused again, so it is marked, and the next
		// refresh waits for a push instead of calling (a push wakes
		// the credential).
		if merr := refuseTicket(ctx, p.store, p.cfg.ID, t); merr != nil {
			p.log.Warn(p.fam.ticket+" refused, and could not be marked so", "credential", p.cfg.ID, "err", merr)
		}
	}
	return token.Fetched{Token: tok}, err
}

// askForTicket calls api_start_push_ticket at most once per PushInterval;
// where no API can ask for a push (WeCom), it says so, as an error once
// pushes had come (lost): before the first, as on a first start, WeCom's
// next push is simply awaited.
func (p *Platform) askForTicket(ctx context.Context, why string, lost bool) {
	p.mu.Lock()
	if time.Since(p.lastPush) < p.cfg.PushInterval {
		p.mu.Unlock()
		return
	}
	p.lastPush = time.Now()
	p.mu.Unlock()
	if p.fam.askForTicket == nil {
		level := slog.LevelWarn
		if lost {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, why+"; WeCom has no API to ask for a push: check the command callback URL in the provider console, where a push can be triggered by hand",
			"credential", p.cfg.ID)
		return
	}
	err := p.fam.askForTicket(ctx, p)
	p.log.Warn(why+"; asked WeChat to push one", "credential", p.cfg.ID,
		"errcode", wechat.ErrCode(err), "err", errString(err))
}

// authorizerSource refreshes an authorizer's token with its durable state
// (a refresh token, a permanent code) and, unless independent, the
// platform's token (its parent's token, handed in by the manager).
type authorizerSource struct {
	p     *Platform
	appid string
}

// Fetch implements token.Source. A refusal of the platform's token (40001,
// 42001, 40014; a suite's 40082, 42009) is returned as WeChat gave it:
// the manager reports the platform's token and retries this authorizer
// once it is replaced.
func (s *authorizerSource) Fetch(ctx context.Context, req token.Request) (token.Fetched, error) {
	f := s.p.fam
	if req.State == "" {
		return token.Fetched{}, &wechat.APIError{ErrCode: f.noState, ErrMsg: "no " + f.stateName + " stored"}
	}
	tok, next, err := f.fetch(ctx, s.p, req.Parent, s.appid, req.State)
	return token.Fetched{Token: tok, State: next}, err
}

// Check implements token.Checker.
func (s *authorizerSource) Check(ctx context.Context, tok string) error {
	return s.p.fam.check(ctx, s.p, tok)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
