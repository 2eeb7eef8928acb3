package token

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// harness is a Manager wired to a fake WeChat through the fake's
// in-process client, so it runs under testing/synctest.
type harness struct {
	fake   *wxtest.Fake
	client *wechat.Client
	store  store.Store
	opts   []option
	m      *Manager
}

type option func(*Config)

func newHarness(t *testing.T, fc wxtest.Config, opts ...option) *harness {
	t.Helper()
	h := &harness{fake: wxtest.New(fc), store: memory.New()}
	h.client = &wechat.Client{HTTP: h.fake.Client(), API: "http://wechat", WeCom: "http://wecom"}
	h.opts = opts
	return h
}

func quiet(c *Config) { c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) }

func seeded(seed uint64) option {
	return func(c *Config) { c.Rand = rand.NewPCG(seed, seed) }
}

// classic adds an app to the fake and returns its classic-mode credential.
// upstream is a Source over one of the client's token calls, checked
// with a call that costs no quota, as package kind's sources are.
type upstream struct {
	fetch func(ctx context.Context, force bool) (wechat.Token, error)
	check func(ctx context.Context, tok string) error
}

func (u *upstream) Fetch(ctx context.Context, req Request) (Fetched, error) {
	tok, err := u.fetch(ctx, req.Force)
	return Fetched{Token: tok}, err
}

func (u *upstream) Check(ctx context.Context, tok string) error { return u.check(ctx, tok) }

// classicSource fetches from cgi-bin/token.
func classicSource(c *wechat.Client, appid, secret string) *upstream {
	return &upstream{
		fetch: func(ctx context.Context, _ bool) (wechat.Token, error) { return c.ClassicToken(ctx, appid, secret) },
		check: func(ctx context.Context, tok string) error { _, err := c.CallbackIP(ctx, tok); return err },
	}
}

func (h *harness) classic(id string) Credential {
	h.fake.AddApp(id, "secret-"+id)
	return Credential{ID: id, Kind: "mp", Source: classicSource(h.client, id, "secret-"+id),
		Fingerprint: Fingerprint(id, "secret-"+id, "classic")}
}

func (h *harness) stable(id string) Credential {
	h.fake.AddApp(id, "secret-"+id)
	return Credential{ID: id, Kind: "mp", Stable: true, Source: &upstream{
		fetch: func(ctx context.Context, force bool) (wechat.Token, error) {
			return h.client.StableToken(ctx, id, "secret-"+id, force)
		},
		check: func(ctx context.Context, tok string) error { _, err := h.client.CallbackIP(ctx, tok); return err },
	},
		Fingerprint: Fingerprint(id, "secret-"+id, "stable")}
}

// wecom adds a corp to the fake and returns its application's credential.
func (h *harness) wecom(id string) Credential {
	h.fake.AddCorp(id, "secret-"+id)
	return Credential{ID: id, Kind: "wecom", Source: &upstream{
		fetch: func(ctx context.Context, _ bool) (wechat.Token, error) {
			return h.client.WeComToken(ctx, id, "secret-"+id)
		},
		check: func(ctx context.Context, tok string) error { _, err := h.client.WeComAPIDomainIP(ctx, tok); return err },
	},
		Fingerprint: Fingerprint(id, "secret-"+id, "wecom")}
}

// unchecked hides a source's Checker: reports of its tokens are acted
// on without asking WeChat whether they work.
func unchecked(c Credential) Credential {
	c.Source = struct{ Source }{c.Source}
	return c
}

// start builds and starts a Manager over creds; the test's cleanup closes it.
func (h *harness) start(t *testing.T, creds ...Credential) *Manager {
	t.Helper()
	cfg := Config{Store: h.store}
	quiet(&cfg)
	for _, o := range h.opts {
		o(&cfg)
	}
	m, err := New(cfg, creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h.m = m
	return m
}

// use calls getcallbackip with the credential's current token, as a
// business server would, and reports whether a token was handed out.
func (h *harness) use(t *testing.T, id string) bool {
	s, err := h.m.Token(id)
	if err != nil {
		return false
	}
	if _, err := h.client.CallbackIP(t.Context(), s.Token); err != nil {
		t.Errorf("%s: token handed out at %s failed upstream: %v", id, time.Now().Format(time.TimeOnly), err)
	}
	return true
}
