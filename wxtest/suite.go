package wxtest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The fixed lifetimes of a WeCom suite's credentials (WECHAT.md §7). They
// do not follow Config.Lifetime, which is the life of tokens only.
const (
	// suiteTicketLifetime is how long get_suite_token accepts a
	// suite_ticket after its push.
	suiteTicketLifetime = 30 * time.Minute
	// suiteAuthCodeLifetime is how long the auth code of a create_auth or
	// reset_permanent_code push can be exchanged.
	suiteAuthCodeLifetime = 10 * time.Minute
)

// customPrefix starts the id of every custom-developed app template
// (代开发): WeCom gives them ids beginning "dk".
const customPrefix = "dk"

// firstAgentID is the agentid of the first authorization the fake makes;
// later ones count up from it. WeCom numbers applications from 1000002.
const firstAgentID = 1000002

// Sizes of the random part of a suite's credentials that are not tokens.
const (
	suiteTicketRandBytes = 48
	permanentRandBytes   = 32
)

// Suite is a WeCom third-party application template (第三方应用), or with
// an id starting "dk" a custom-developed app template (代开发): what the
// fake and the token server under test are both configured with.
type Suite struct {
	// SuiteID addresses every push, and is the receive id sealed inside
	// them.
	SuiteID string

	// Secret is the suite_secret get_suite_token checks.
	Secret string

	// Token and EncodingAESKey are the token and 43-character key of the
	// suite's command callback URL; the fake signs and encrypts its pushes
	// with them.
	Token, EncodingAESKey string
}

// String names the suite by its id alone, so that printing one never shows
// its secret, token or key.
func (s Suite) String() string {
	return fmt.Sprintf("wxtest.Suite{SuiteID: %q}", s.SuiteID)
}

// GoString is String, so that %#v redacts the secrets as well.
func (s Suite) GoString() string { return s.String() }

// suiteState is what the fake keeps about a suite account.
type suiteState struct {
	cfg Suite

	// token is the current suite_access_token.
	token *token

	// ticket and prevTicket are the two newest suite_tickets, the only
	// ones get_suite_token accepts; tickets remembers when each recent one
	// was pushed.
	ticket, prevTicket string
	tickets            map[string]time.Time

	codes map[string]suiteCode  // auth codes not yet exchanged
	auths map[string]*suiteAuth // authorizations, by corpid
}

// custom reports whether the suite is a custom-developed app template.
func (s *suiteState) custom() bool { return strings.HasPrefix(s.cfg.SuiteID, customPrefix) }

// suiteCode is an auth code waiting for get_permanent_code.
type suiteCode struct {
	corp    string
	expires time.Time
}

// expired reports whether c can no longer be exchanged at now.
func (c suiteCode) expired(now time.Time) bool { return !now.Before(c.expires) }

// suiteAuth is one corp's authorization of one suite. Its account, named
// "suiteid/corpid", owns the corp tokens it issues, so that Stats of that
// id counts them.
type suiteAuth struct {
	suite   *account
	corp    string
	account *account

	// permanent is the permanent code that works now; "" before the first
	// exchange and after CancelAuth.
	permanent string
	agentID   int64

	token  *token   // the current corp token
	tokens []*token // corp tokens issued, for CancelAuth
}

// active reports whether the authorization has a working permanent code.
func (a *suiteAuth) active() bool { return a != nil && a.permanent != "" }

// providerState is a WeCom service provider: its secret and the one
// provider_access_token it hands out while valid.
type providerState struct {
	secret string
	token  *token
}

// AddSuite registers a WeCom suite. A suite id starting with "dk" is a
// custom-developed app template (代开发): get_permanent_code answers
// is_customized_app true for it, its permanent codes are corp app secrets
// for gettoken, and get_corp_token refuses it. Adding a suite id again
// replaces its secret, token and key; tickets, tokens and authorizations
// are kept.
func (f *Fake) AddSuite(s Suite) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.account(s.SuiteID)
	if a.suite == nil {
		a.suite = &suiteState{
			tickets: make(map[string]time.Time),
			codes:   make(map[string]suiteCode),
			auths:   make(map[string]*suiteAuth),
		}
	}
	a.suite.cfg = s
}

// AddProvider registers a WeCom service provider: the provider's corpid and
// its provider_secret, which get_provider_token checks. Adding it again
// replaces the secret and keeps the current token.
func (f *Fake) AddProvider(corpid, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.account(corpid)
	if a.provider == nil {
		a.provider = &providerState{}
	}
	a.provider.secret = secret
}

// suite returns the suite registered as id, or nil. The caller holds f.mu.
func (f *Fake) suite(id string) *account {
	if a := f.accounts[id]; a != nil && a.suite != nil {
		return a
	}
	return nil
}

// notSuite is the error of a call for an id AddSuite never added.
func notSuite(id string) error {
	return fmt.Errorf("wxtest: %q is not a suite", id)
}

// suiteAuthorization returns the authorization of corpid, creating it. The
// caller holds f.mu.
func (f *Fake) suiteAuthorization(a *account, corpid string) *suiteAuth {
	auth := a.suite.auths[corpid]
	if auth == nil {
		auth = &suiteAuth{suite: a, corp: corpid, account: f.account(a.id + "/" + corpid)}
		a.suite.auths[corpid] = auth
		f.authCorps[corpid] = true
	}
	return auth
}

// newPermanentCode gives auth a new permanent code, which replaces the one
// it had at once: the old one stops working, while the corp tokens it
// issued live on. An authorization that had none begins anew, with a new
// agentid. The caller holds f.mu.
func (f *Fake) newPermanentCode(auth *suiteAuth) error {
	v, err := f.randomString(permanentRandBytes)
	if err != nil {
		return err
	}
	if !auth.active() {
		f.lastAgent++
		auth.agentID = f.lastAgent
	}
	auth.permanent = "permanentcode@@@" + v
	if auth.suite.suite.custom() {
		f.customCodes[auth.permanent] = auth
	}
	return nil
}

// GrantSuite records that corpid has authorized the suite, pushing nothing
// and issuing no auth code: an authorization made long ago, which a token
// server carries over from another system by importing its permanent code,
// returned here. Like the exchange of a create_auth code, it gives the
// authorization a new permanent code, and the one it had stops working.
func (f *Fake) GrantSuite(suiteID, corpid string) (permanentCode string, err error) {
	if corpid == "" {
		return "", errors.New("wxtest: empty corpid")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.suite(suiteID)
	if a == nil {
		return "", notSuite(suiteID)
	}
	auth := f.suiteAuthorization(a, corpid)
	if err := f.newPermanentCode(auth); err != nil {
		return "", err
	}
	return auth.permanent, nil
}

// SuitePermanentCode returns the permanent code of corpid's authorization
// of the suite that works now: "" when the corp has not authorized it,
// has not yet had its auth code exchanged, or has cancelled.
func (f *Fake) SuitePermanentCode(suiteID, corpid string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.suite(suiteID)
	if a == nil {
		return ""
	}
	if auth := a.suite.auths[corpid]; auth != nil {
		return auth.permanent
	}
	return ""
}

// newSuiteTicket issues a suite_ticket at now. It becomes the current
// ticket, and the current one the previous; the one before that stops being
// accepted. The caller holds f.mu.
func (f *Fake) newSuiteTicket(s *suiteState, now time.Time) (string, error) {
	v, err := f.randomString(suiteTicketRandBytes)
	if err != nil {
		return "", err
	}
	for old, at := range s.tickets {
		if now.Sub(at) > suiteTicketLifetime+forget {
			delete(s.tickets, old)
		}
	}
	s.tickets[v] = now
	s.prevTicket, s.ticket = s.ticket, v
	return v, nil
}

// ticketOK reports whether get_suite_token accepts ticket at now: the
// current or the previous ticket, within 30 minutes of its push. WeCom
// answers every other value, another suite's ticket included, 40085.
func (s *suiteState) ticketOK(ticket string, now time.Time) bool {
	at, known := s.tickets[ticket]
	return known && ticket != "" && (ticket == s.ticket || ticket == s.prevTicket) &&
		now.Sub(at) < suiteTicketLifetime
}

// newAuthCode issues an auth code for corpid, exchangeable once within 10
// minutes. The caller holds f.mu.
func (f *Fake) newAuthCode(s *suiteState, corpid string, now time.Time) (string, error) {
	v, err := f.randomString(codeRandBytes)
	if err != nil {
		return "", err
	}
	v = "authcode@@@" + v
	for code, c := range s.codes {
		if now.Sub(c.expires) > forget {
			delete(s.codes, code)
		}
	}
	s.codes[v] = suiteCode{corp: corpid, expires: now.Add(suiteAuthCodeLifetime)}
	return v, nil
}

// corpToken issues a new corp token for auth; the one it replaces stays
// valid for Config.Overlap. The caller holds f.mu.
func (f *Fake) corpToken(auth *suiteAuth, now time.Time) (*token, error) {
	t, err := f.issue(auth.account, now)
	if err != nil {
		return nil, err
	}
	t.wecom, t.corp, t.app = true, auth.corp, strconv.FormatInt(auth.agentID, 10)
	auth.token.replace(now, f.cfg.overlap())
	auth.token = t
	auth.tokens = slices.DeleteFunc(auth.tokens, func(old *token) bool { return now.Sub(old.expires) > forget })
	auth.tokens = append(auth.tokens, t)
	return t, nil
}

// customAuth returns the custom app authorization whose permanent code,
// current or not, secret is, if it is corpid's. The caller holds f.mu.
func (f *Fake) customAuth(corpid, secret string) *suiteAuth {
	if auth := f.customCodes[secret]; auth != nil && auth.corp == corpid {
		return auth
	}
	return nil
}
