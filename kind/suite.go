package kind

import (
	"context"
	"regexp"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Suite is a WeCom third-party app (第三方应用), or with a suite id
// starting "dk" a custom-developed app template (代开发): its
// suite_access_token is fetched with the suite_ticket WeCom pushes to its
// command callback, and every corp that installs it becomes a credential
// of its own, "{suite}/{corpid}", at run time (package component).
var Suite = &Kind{
	Name: component.KindSuite,
	Fields: []string{"suite_id", "suite_secret", "token", "encoding_aes_key", "tickets", "callback",
		"permanent_code_v1"},
	Defaults: func(cr *config.Credential) {
		if cr.ID == "" {
			cr.ID = cr.SuiteID
		}
		if cr.Secret == "" {
			cr.Secret = cr.SuiteSecret
		}
	},
	Validate: func(cr config.Credential, bad Bad) {
		if cr.SuiteID == "" {
			bad("suite_id", "required for kind suite")
		} else if !suiteIDPattern.MatchString(cr.SuiteID) {
			bad("suite_id", "want the SuiteID of the provider console: up to 64 letters and digits, got %q", cr.SuiteID)
		}
		if cr.SuiteSecret != "" && cr.SuiteSecret != cr.Secret {
			bad("suite_secret", "set secret or suite_secret, not both")
		}
		if cr.Token == "" {
			bad("token", "required for kind suite: the Token of the suite's command callback")
		}
		if !config.ValidAESKey(cr.EncodingAESKey) {
			bad("encoding_aes_key", "want the suite's 43-character EncodingAESKey")
		}
		if cb := cr.Callback; cb != nil {
			if cb.Token != "" || cb.EncodingAESKey != "" {
				bad("callback", "holds only forward rules for kind suite: its token and encoding_aes_key are the credential's own fields")
			}
			config.ValidateForward(cb.Forward, "suite", bad)
		}
		if cr.PermanentCodeV1 && component.IsCustomApp(cr.SuiteID) {
			bad("permanent_code_v1", "not for a custom-developed app (a suite id starting dk): its permanent code is the corp's app secret, from v2")
		}
	},
	Build: func(env *Env, cr config.Credential) (Built, error) {
		p := component.NewSuite(component.Config{ID: cr.ID, AppID: cr.SuiteID, Secret: cr.Secret,
			PermanentCodeV1: cr.PermanentCodeV1, Tickets: authorizerTickets(env, wecomTickets, cr.Tickets)},
			env.Client, env.Store, env.Logger)
		// WeCom seals a suite's command pushes for the suite id.
		return Built{Credential: p.Credential(), Platform: p, Receiver: cr.SuiteID,
			CallbackToken: cr.Token, AESKey: cr.EncodingAESKey}, nil
	},
	// WeCom verifies the command callback URL with a GET before saving
	// it, and encrypts every push and the verification's echostr. The
	// pushes are sealed for the suite id, the echostr for the provider's
	// corpid, which the suite's configuration does not hold (easywechat's
	// and WxJava's third-party servers open it with the provider's).
	Callback: &Callback{Verify: true, Encrypted: true, VerifyAnyReceiver: true},
	// The JS-SDK tickets of every corp: the corp's jsapi ticket and the
	// app's agent_config ticket.
	Tickets:     wecomTickets,
	Authorizers: true,
	// The service APIs on WeCom's host take suite_access_token.
	Proxy: &Proxy{Host: facade.WeCom, Param: "suite_access_token"},
}

func init() { Default.Register(Suite) }

// suiteIDPattern is what a suite id may look like: WeCom's are "ww" or
// "dk" and hex digits; it becomes a credential id, a store key and a URL
// path segment.
var suiteIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// Provider is a WeCom service provider's own token (provider_access_token),
// from get_provider_token with the provider's corpid and secret; the
// provider APIs (login, registration, license orders) take it.
var Provider = &Kind{
	Name:   "provider",
	Fields: []string{"corpid", "provider_secret"},
	Defaults: func(cr *config.Credential) {
		if cr.ID == "" {
			cr.ID = cr.CorpID
		}
		if cr.Secret == "" {
			cr.Secret = cr.ProviderSecret
		}
	},
	Validate: func(cr config.Credential, bad Bad) {
		if cr.CorpID == "" {
			bad("corpid", "required for kind provider: the provider's CorpID")
		} else if !corpIDPattern.MatchString(cr.CorpID) {
			bad("corpid", "want ww (or wx) and 16 lowercase hex digits (the provider's CorpID), got %q", cr.CorpID)
		}
		if cr.ProviderSecret != "" && cr.ProviderSecret != cr.Secret {
			bad("provider_secret", "set secret or provider_secret, not both")
		}
	},
	Build: func(env *Env, cr config.Credential) (Built, error) {
		return Built{Credential: token.Credential{ID: cr.ID, Kind: "provider",
			Source:      &providerSource{client: env.Client, corpid: cr.CorpID, secret: cr.Secret},
			Fingerprint: token.Fingerprint("provider", cr.CorpID, cr.Secret, env.Client.WeCom)}, Receiver: cr.CorpID}, nil
	},
	// The provider APIs on WeCom's host take provider_access_token.
	Proxy: &Proxy{Host: facade.WeCom, Param: "provider_access_token"},
}

func init() { Default.Register(Provider) }

// providerSource fetches the provider_access_token. WeCom answers the same
// token while it is valid, and may end it early.
type providerSource struct {
	client         *wechat.Client
	corpid, secret string
}

// Fetch implements token.Source.
func (s *providerSource) Fetch(ctx context.Context, _ token.Request) (token.Fetched, error) {
	tok, err := s.client.ProviderToken(ctx, s.corpid, s.secret)
	return token.Fetched{Token: tok}, err
}
