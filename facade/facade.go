package facade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/relay"
	"github.com/wxtoken/wxtoken/token"
)

// Tokens is what the facade needs of the token manager.
type Tokens interface {
	Token(id string) (*token.Snapshot, error)
	Snapshot(id string) (*token.Snapshot, error)
	Await(ctx context.Context, id string) (*token.Snapshot, error)
	Report(ctx context.Context, id, stale string) (*token.Snapshot, token.Result, error)
	IDs() []string
}

var _ Tokens = (*token.Manager)(nil)

// Family is the set of WeChat token endpoints that name a credential.
type Family string

// The families.
const (
	// MP: an Official Account, Mini Program or Mini Game, named by its
	// appid at cgi-bin/token and cgi-bin/stable_token; its token gets
	// cgi-bin/ticket/getticket. An authorizer's token is one too.
	MP Family = "mp"
	// WeCom: a WeCom application, named by its corpid at
	// cgi-bin/gettoken; its token gets get_jsapi_ticket and ticket/get.
	WeCom Family = "wecom"
	// Component: a third-party platform, named by its component_appid at
	// cgi-bin/component/api_component_token; its token gets its
	// authorizers' tokens at api_authorizer_token.
	Component Family = "component"
)

// Credential is a configured credential as WeChat's token endpoints name
// it.
type Credential struct {
	// ID is its credential id.
	ID string
	// AppID is the appid, corpid or component_appid the SDK sends.
	AppID  string
	Family Family
	// Secret is the AppSecret of an MP credential, put in place of the
	// client key in the calls WeChat authenticates with it (login.go).
	Secret string
}

// Client is a business server allowed to use the facade: the same keys
// and allow lists as the /v1 API.
type Client struct {
	Name string
	// KeyHash is the SHA-256 of its key, which the SDK sends where it
	// would send the AppSecret.
	KeyHash [32]byte
	// Allow lists the credential ids it may use; "*" allows all, and
	// "<platform id>/*" every authorizer of a platform.
	Allow []string
	// SDK names the SDK it uses, for expires_in (expires.go); "" if not
	// said.
	SDK string
	// Until, if set, is when the key stops working: a rotated key's end
	// of grace.
	Until time.Time
}

// Config configures a Facade. Zero values mean the documented defaults.
type Config struct {
	// Tokens serves the tokens. Required.
	Tokens      Tokens
	Credentials []Credential
	Clients     []Client
	// Tickets returns the JS-SDK tickets credential id enables, as ticket
	// type → ticket credential id; nil if none has any.
	Tickets func(id string) map[string]string
	// Logger receives the reports made through the facade; nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxBody bounds request bodies (default 4 KiB: a token request is a
	// few ids).
	MaxBody int64
	// ReportTimeout bounds how long a force_refresh, or a forwarded call
	// whose token WeChat refused, waits for its refresh (default 30s).
	ReportTimeout time.Duration
	// Upstream returns the base URL of the WeChat host that serves
	// credentials of family fam (the active API host, or WeCom's), where
	// every path other than the token endpoints is forwarded (forward.go);
	// nil refuses those paths.
	Upstream func(fam Family) string
	// Transport carries forwarded calls; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// MaxReplay bounds the request bodies kept to retry a forwarded call
	// with a new token (default 64 KiB); larger ones stream through and
	// are not retried.
	MaxReplay int64
}

// Facade answers WeChat's token and ticket endpoints, and forwards every
// other call made with a token it issued. It is an http.Handler.
type Facade struct {
	tokens Tokens
	// idx is the clients and credentials in force, replaced whole when
	// either changes at run time (SetClients, SetCredentials).
	idx     atomic.Pointer[index]
	setMu   sync.Mutex // serializes the replacements
	clist   []Client
	file    []Credential // the configured credentials
	added   []Credential // those added at run time
	tickets func(id string) map[string]string
	log     *slog.Logger
	maxBody int64
	timeout time.Duration
	issued  *issued
	mux     *http.ServeMux

	upstream  func(Family) string
	maxReplay int64
	relay     *relay.Relay
	// loginClient makes the login calls, which carry the AppSecret.
	loginClient *http.Client
}

// New returns a Facade for cfg.
func New(cfg Config) (*Facade, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("facade: Config.Tokens is required")
	}
	f := &Facade{
		tokens:  cfg.Tokens,
		tickets: cfg.Tickets,
		log:     cfg.Logger,
		maxBody: cfg.MaxBody,
		timeout: cfg.ReportTimeout,
		mux:     http.NewServeMux(),

		upstream:  cfg.Upstream,
		maxReplay: cfg.MaxReplay,
	}
	if f.maxReplay <= 0 {
		f.maxReplay = 64 << 10
	}
	f.file = cfg.Credentials
	if err := f.SetClients(cfg.Clients); err != nil {
		return nil, err
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.maxBody <= 0 {
		f.maxBody = 4 << 10
	}
	if f.timeout <= 0 {
		f.timeout = 30 * time.Second
	}
	f.relay = f.newRelay(cfg.Transport)
	f.loginClient = &http.Client{Transport: cfg.Transport, Timeout: f.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.issued = newIssued(f.scan)
	for pattern, h := range map[string]func(*http.Request) (any, *Error){
		"/cgi-bin/token":                          f.classicToken,
		"/cgi-bin/stable_token":                   f.stableToken,
		"/cgi-bin/gettoken":                       f.wecomToken,
		"/cgi-bin/component/api_component_token":  f.componentToken,
		"/cgi-bin/component/api_authorizer_token": f.authorizerToken,
		"/cgi-bin/ticket/getticket":               f.mpTicket,
		"/cgi-bin/get_jsapi_ticket":               f.corpTicket,
		"/cgi-bin/ticket/get":                     f.agentTicket,
	} {
		f.mux.Handle(pattern, f.handle(h))
	}
	f.mux.HandleFunc("/sns/jscode2session", f.login)
	f.mux.HandleFunc("/sns/oauth2/access_token", f.login)
	f.mux.HandleFunc("/", f.forwardCall)
	return f, nil
}

// index is what the facade looks requests up in.
type index struct {
	clients clients
	byAppID map[string][]Credential
	family  map[string]Family // by credential id
}

// SetClients replaces the clients allowed to use the facade.
func (f *Facade) SetClients(list []Client) error {
	f.setMu.Lock()
	defer f.setMu.Unlock()
	return f.rebuild(list, f.added)
}

// SetCredentials replaces the credentials added at run time that the
// facade serves besides the configured ones; a configured credential with
// the same id wins.
func (f *Facade) SetCredentials(added []Credential) error {
	f.setMu.Lock()
	defer f.setMu.Unlock()
	return f.rebuild(f.clist, added)
}

// rebuild installs a new index; f.setMu is held.
func (f *Facade) rebuild(list []Client, added []Credential) error {
	cs, err := newClients(list)
	if err != nil {
		return err
	}
	idx := &index{clients: cs, byAppID: map[string][]Credential{}, family: map[string]Family{}}
	for _, c := range append(f.file[:len(f.file):len(f.file)], added...) {
		switch c.Family {
		case MP, WeCom, Component:
		default:
			return fmt.Errorf("facade: credential %s: unknown family %q", c.ID, c.Family)
		}
		if _, dup := idx.family[c.ID]; dup {
			continue // configured first: it wins
		}
		idx.byAppID[c.AppID] = append(idx.byAppID[c.AppID], c)
		idx.family[c.ID] = c.Family
	}
	f.idx.Store(idx)
	f.clist, f.added = list, added
	return nil
}

// ServeHTTP implements http.Handler.
func (f *Facade) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// handle adapts a handler that returns WeChat's answer or its error: both
// go out as WeChat sends them, JSON with HTTP 200.
func (f *Facade) handle(h func(*http.Request) (any, *Error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, e := h(r)
		if e != nil {
			v = e
		}
		writeJSON(w, v)
	})
}

// current returns the valid token of credential id, waiting briefly for a
// fetch that is due or under way, as the /v1 API does. It never fetches.
// A token with less than minLeft left is waited out, and its successor
// answered (expires.go).
func (f *Facade) current(r *http.Request, id string) (*token.Snapshot, *Error) {
	snap, e := f.valid(r, id)
	if e != nil {
		return nil, e
	}
	if left := snap.ExpiresIn(time.Now()); left < minLeft {
		t := time.NewTimer(left)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil, &Error{Code: CodeSystemError, Msg: "system error: request ended"}
		}
		return f.valid(r, id)
	}
	return snap, nil
}

// valid is current without the wait for a successor.
func (f *Facade) valid(r *http.Request, id string) (*token.Snapshot, *Error) {
	snap, err := f.tokens.Token(id)
	if err != nil {
		snap, err = f.tokens.Await(r.Context(), id)
	}
	if err != nil {
		return nil, tokenError(err)
	}
	return snap, nil
}
