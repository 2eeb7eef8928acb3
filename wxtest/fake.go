package wxtest

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults for the zero Config, and the platform's fixed limits.
const (
	defaultLifetime          = 7200 * time.Second
	defaultOverlap           = 5 * time.Minute
	defaultStableRenewBefore = 5 * time.Minute
	defaultDailyLimit        = 2000
)

// Config tunes a Fake. The zero value behaves like the real platform.
type Config struct {
	// Lifetime is the life of issued tokens, reported as expires_in in
	// whole seconds. Zero means 7200 s; anything shorter than a second is
	// raised to one, because expires_in 0 is not a real answer.
	Lifetime time.Duration

	// TicketLifetime is the life of JS-SDK tickets, reported as expires_in
	// in whole seconds on every fetch, however much of it is left. Zero
	// means Lifetime (so 7200 s by default); anything shorter than a
	// second is raised to one.
	TicketLifetime time.Duration

	// Overlap is how long a replaced classic, WeCom or force-replaced stable
	// token stays valid after its successor is issued. Zero means 5 minutes;
	// a negative value means the old token dies at once.
	Overlap time.Duration

	// StableRenewBefore is how close to expiry a normal stable_token call
	// must be to get a new token instead of the current one. Zero means
	// 5 minutes; a negative value means only at expiry.
	StableRenewBefore time.Duration

	// WeComRepeat makes WeCom's gettoken answer the current token of an
	// application while it is valid, with the seconds it has left, as
	// older docs promise: the next token can only be had once it has
	// expired. By default each call issues a new token instead.
	WeComRepeat bool

	// DailyLimit is the number of classic /cgi-bin/token calls per app, and
	// of WeCom gettoken calls per corp, allowed in one Beijing day. Zero
	// means 2000.
	DailyLimit int

	// Now is the clock for token validity and quotas. Nil means time.Now,
	// read at each use, so that under testing/synctest it is the bubble's
	// fake clock.
	Now func() time.Time

	// Rand supplies the randomness in tokens and tickets. Nil means
	// crypto/rand. The Fake reads it only while holding its lock, so it need
	// not be safe for concurrent use. Tokens stay unique even if it repeats.
	Rand io.Reader
}

func (c Config) lifetime() time.Duration {
	switch {
	case c.Lifetime <= 0:
		return defaultLifetime
	case c.Lifetime < time.Second:
		return time.Second
	}
	return c.Lifetime
}

func (c Config) ticketLifetime() time.Duration {
	switch {
	case c.TicketLifetime <= 0:
		return c.lifetime()
	case c.TicketLifetime < time.Second:
		return time.Second
	}
	return c.TicketLifetime
}

func (c Config) overlap() time.Duration {
	switch {
	case c.Overlap == 0:
		return defaultOverlap
	case c.Overlap < 0:
		return 0
	}
	return c.Overlap
}

func (c Config) stableRenewBefore() time.Duration {
	switch {
	case c.StableRenewBefore == 0:
		return defaultStableRenewBefore
	case c.StableRenewBefore < 0:
		return 0
	}
	return c.StableRenewBefore
}

func (c Config) dailyLimit() int {
	if c.DailyLimit <= 0 {
		return defaultDailyLimit
	}
	return c.DailyLimit
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// Fake is a fake WeChat upstream. It is an http.Handler and is safe for
// concurrent use; create one with New.
type Fake struct {
	cfg Config

	// One lock guards all state: the fake is not a hot path, and a single
	// lock makes every answer a consistent snapshot.
	mu        sync.Mutex
	accounts  map[string]*account
	tokens    map[string]*token
	faults    map[string]*faultState
	lose      map[string]int // answers to lose, by account (LoseAnswers)
	whitelist map[string]bool
	serial    uint64

	// tickets holds the current JS-SDK ticket of each key, ticketValues
	// every ticket still remembered, by value; ticketCalls counts fetches
	// by key and ticketLimits WeCom's hourly ticket fetches.
	tickets      map[TicketKey]*ticket
	ticketValues map[string]*ticket
	ticketCalls  map[TicketKey]int
	ticketLimits map[appLimit]*hourLimit

	// targets and rotation hold SetPushTarget and SetRefreshTokenRotation,
	// by component appid; they may be set before AddComponent.
	targets  map[string]pushTarget
	rotation map[string]int

	// loginCodes are the codes LoginCode issued, by value.
	loginCodes map[string]*loginCode

	// customCodes maps every permanent code a custom-app (代开发) suite
	// issued, current or not, to its authorization: gettoken takes them as
	// the corp's secret. authCorps holds the corpids that authorized a
	// suite, which gettoken knows even if AddCorp never added them.
	// lastAgent is the agentid the newest authorization got.
	customCodes map[string]*suiteAuth
	authCorps   map[string]bool
	lastAgent   int64

	// life ends the pushes that api_start_push_ticket runs in the
	// background; stop cancels it, wg waits for them, and closed keeps
	// Close's wait from racing a new one.
	life   context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// account is an appid or a corpid, with everything the fake keeps about it.
type account struct {
	id string

	// isApp and secret describe an Official Account or Mini Program.
	isApp  bool
	secret string
	frozen bool

	// corp holds the current token of each WeCom application secret of a
	// corpid; nil when the id is not a corp.
	corp map[string]*token

	// component holds a third-party platform's state; nil when the id is
	// not a component. Its secret is kept in secret, like an app's.
	component *componentState

	// suite holds a WeCom suite's state, and provider a WeCom service
	// provider's; nil when the id is neither. A suite's authorization by
	// a corp is an account of its own, "suiteid/corpid", which owns the
	// corp tokens it issues.
	suite    *suiteState
	provider *providerState

	classic *token
	stable  *token
	live    []*token // every token still remembered, for Expire and pruning

	quota  quota
	forced forceLimit

	stats Stats
}

// Stats counts what the Fake saw for one appid or corpid.
type Stats struct {
	// ClassicCalls, StableCalls and WeComCalls count calls received at
	// /cgi-bin/token, /cgi-bin/stable_token and /cgi-bin/gettoken, failed
	// ones included. StableForced counts the stable calls among them that
	// asked for force_refresh.
	ClassicCalls, StableCalls, StableForced, WeComCalls int

	// Issued counts new tokens actually issued, at all endpoints. A stable
	// call answered with the current token issues nothing.
	Issued int

	// LoginCalls counts calls to sns/jscode2session and
	// sns/oauth2/access_token naming this appid, failed ones included.
	LoginCalls int

	// GoodUses counts calls to token-using endpoints (getcallbackip,
	// get_api_domain_ip, the ticket endpoints, clear_quota, for a
	// component the component endpoints that take its token, and for a
	// suite the suite endpoints that take its token) made with a valid
	// token.
	GoodUses int

	// DeadUses counts token uses answered 40001, 42001 or 40014 (or at the
	// suite endpoints 40082 or 42009) where the token could be traced to
	// this account.
	DeadUses int

	// TicketCalls counts calls to the ticket endpoints (getticket, and
	// WeCom's get_jsapi_ticket and ticket/get) made with this account's
	// tokens, valid or not; Fake.TicketCalls counts them by ticket.
	TicketCalls int

	// ComponentTokenCalls, StartPushCalls, PreAuthCodeCalls and
	// QueryAuthCalls count calls received at api_component_token,
	// api_start_push_ticket, api_create_preauthcode and api_query_auth that
	// name this component appid in their body, failed ones included.
	ComponentTokenCalls, StartPushCalls, PreAuthCodeCalls, QueryAuthCalls int

	// AuthorizerTokenCalls counts api_authorizer_token calls, failed ones
	// included: for a component appid, all that name it as component_appid;
	// for an authorizer appid the fake knows, all that name it as
	// authorizer_appid.
	AuthorizerTokenCalls int

	// Pushes counts the component_verify_ticket and authorization-event
	// pushes the fake made to this component's target, on its own or for
	// PushTicket, Authorize, UpdateAuthorization and Unauthorize (PushRaw
	// is not counted), and for a suite id the pushes of PushSuiteTicket,
	// CreateAuth, ChangeAuth, CancelAuth and ResetPermanentCode (not
	// PushSuiteRaw). PushFailures counts those among them that could not
	// be sent or were not acknowledged with "success".
	Pushes, PushFailures int

	// SuiteTokenCalls counts get_suite_token calls naming this suite id,
	// and PermanentCodeCalls get_permanent_code calls (v1 and v2) made with
	// a token of this suite, failed ones included.
	SuiteTokenCalls, PermanentCodeCalls int

	// CorpTokenCalls counts, for "suiteid/corpid", the get_corp_token calls
	// made with a token of the suite for the corp, failed ones included;
	// the gettoken calls of a custom app's authorization count in
	// WeComCalls of the same id.
	CorpTokenCalls int

	// ProviderTokenCalls counts get_provider_token calls naming this
	// corpid, failed ones included.
	ProviderTokenCalls int
}

// New returns a Fake with no accounts, no faults and no whitelist.
//
// A Fake that has served api_start_push_ticket runs pushes in the background;
// Close stops them.
func New(cfg Config) *Fake {
	life, stop := context.WithCancel(context.Background())
	return &Fake{
		cfg:       cfg,
		accounts:  make(map[string]*account),
		tokens:    make(map[string]*token),
		faults:    make(map[string]*faultState),
		whitelist: make(map[string]bool),

		tickets:      make(map[TicketKey]*ticket),
		ticketValues: make(map[string]*ticket),
		ticketCalls:  make(map[TicketKey]int),
		ticketLimits: make(map[appLimit]*hourLimit),

		targets:  make(map[string]pushTarget),
		rotation: make(map[string]int),
		life:     life,
		stop:     stop,

		customCodes: make(map[string]*suiteAuth),
		authCorps:   make(map[string]bool),
		lastAgent:   firstAgentID - 1,
	}
}

// ServeHTTP answers one request as api.weixin.qq.com or qyapi.weixin.qq.com
// would; see the package documentation for the endpoints.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/cgi-bin/token":
		f.serveClassic(w, r)
	case "/cgi-bin/stable_token":
		f.serveStable(w, r)
	case "/cgi-bin/gettoken":
		f.serveWeCom(w, r)
	case "/cgi-bin/getcallbackip", "/cgi-bin/get_api_domain_ip":
		f.serveIPList(w, r)
	case "/cgi-bin/ticket/getticket":
		f.serveTicket(w, r)
	case "/cgi-bin/get_jsapi_ticket":
		f.serveWeComTicket(w, r, false)
	case "/cgi-bin/ticket/get":
		f.serveWeComTicket(w, r, true)
	case "/cgi-bin/clear_quota":
		f.serveClearQuota(w, r)
	case "/cgi-bin/clear_quota/v2":
		f.serveClearQuotaV2(w, r)
	case "/cgi-bin/component/api_start_push_ticket":
		f.serveStartPushTicket(w, r)
	case "/cgi-bin/component/api_component_token":
		f.serveComponentToken(w, r)
	case "/cgi-bin/component/api_create_preauthcode":
		f.servePreAuthCode(w, r)
	case "/cgi-bin/component/api_query_auth":
		f.serveQueryAuth(w, r)
	case "/cgi-bin/component/api_authorizer_token":
		f.serveAuthorizerToken(w, r)
	case "/cgi-bin/service/get_suite_token":
		f.serveSuiteToken(w, r)
	case "/cgi-bin/service/v2/get_permanent_code":
		f.servePermanentCode(w, r, false)
	case "/cgi-bin/service/get_permanent_code":
		f.servePermanentCode(w, r, true)
	case "/cgi-bin/service/get_corp_token":
		f.serveCorpToken(w, r)
	case "/cgi-bin/service/get_provider_token":
		f.serveProviderToken(w, r)
	case "/sns/jscode2session", "/sns/oauth2/access_token":
		f.serveLogin(w, r)
	default:
		http.NotFound(w, r)
	}
}

// AddApp registers an Official Account or Mini Program. Adding an appid
// again sets a new secret and unfreezes it, which is how an administrator
// recovers a frozen AppSecret.
func (f *Fake) AddApp(appid, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.account(appid)
	a.isApp = true
	a.secret = secret
	a.frozen = false
}

// AddCorp registers a WeCom application: a corpid and one of its secrets.
// Each (corpid, secret) pair has its own token, so a corp with several
// applications is added once per secret.
func (f *Fake) AddCorp(corpid, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.account(corpid)
	if a.corp == nil {
		a.corp = make(map[string]*token)
	}
	if _, ok := a.corp[secret]; !ok {
		a.corp[secret] = nil
	}
}

// account returns the account for id, creating it. The caller holds f.mu.
func (f *Fake) account(id string) *account {
	a := f.accounts[id]
	if a == nil {
		a = &account{id: id}
		f.accounts[id] = a
	}
	return a
}

// Stats returns the counters of an appid, corpid or component appid; an
// unknown id has none.
func (f *Fake) Stats(appid string) Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[appid]; a != nil {
		return a.stats
	}
	return Stats{}
}

// FreezeSecret freezes an app's AppSecret: its classic and stable calls with
// the right secret then answer 40243 until AddApp sets the secret again. A
// component's secret freezes the same way, for api_component_token and
// api_start_push_ticket, until AddComponent. Unknown ids are ignored, and so
// are WeCom corps, which have no such state.
func (f *Fake) FreezeSecret(appid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[appid]; a != nil {
		a.frozen = true
	}
}

// Expire ends every token of an appid or corpid now, as WeCom says it may
// do: each later use answers 42001, and the next stable_token call issues a
// new token. It ends a suite's suite_access_token given the suite id (whose
// uses then answer 42009), a provider's token given its corpid (the next
// get_provider_token issues a new one), and the corp tokens of a suite's
// authorization given "suiteid/corpid". Unknown ids are ignored.
func (f *Fake) Expire(appid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[appid]; a != nil {
		for _, t := range a.live {
			t.killed = true
		}
	}
}
