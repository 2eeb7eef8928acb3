// Package kind declares the kinds of credential wxtoken keeps. A kind is
// one value, registered once: its name, the configuration fields it takes
// and their rules, how its token source is built and fingerprinted, the
// callback WeChat calls for it, and the JS-SDK tickets derived from it.
// Configuration, cmd/wxtoken, the server's routes and status iterate the
// registry; none of them switches on a kind's name, so adding a kind is
// one file here plus its tests.
package kind

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Kind is everything wxtoken knows of one kind of credential.
type Kind struct {
	// Name is the kind in configuration (kind: mp), status and logs.
	Name string
	// Fields are the credential fields the kind takes besides id, kind
	// and secret, by their YAML names; any other that is set is refused.
	Fields []string
	// Defaults fills what the kind defaults (an mp credential's id is its
	// appid); nil if nothing.
	Defaults func(*config.Credential)
	// Validate checks the kind's own fields; bad reports one by name.
	Validate func(cr config.Credential, bad Bad)
	// Build makes the credential's token credential.
	Build func(env *Env, cr config.Credential) (Built, error)
	// Callback is how WeChat calls the kind's URL, nil if it does not.
	Callback *Callback
	// Tickets are the JS-SDK tickets a credential of this kind may enable
	// (tickets: [...]), by type.
	Tickets []*Ticket
	// Authorizers: credentials of this kind create others at run time (a
	// platform's authorizers), which clients may be allowed ("<id>/*")
	// and may import.
	Authorizers bool
	// Facade is the family of WeChat token endpoints that name a
	// credential of this kind by its Receiver on the WeChat-compatible
	// facade; "" if none does.
	Facade facade.Family
	// Proxy is how /v1/proxy calls WeChat with a credential of this
	// kind, when its Facade family does not say: nil for that.
	Proxy *Proxy
}

// Proxy is the WeChat host a kind's token is used at, and the query
// parameter it goes in.
type Proxy struct {
	// Host is the family whose WeChat host takes the token.
	Host facade.Family
	// Param is the query parameter WeChat takes the token as.
	Param string
}

// Bad reports what is wrong with one field.
type Bad func(field, format string, args ...any)

// Env is what building a credential needs.
type Env struct {
	Client *wechat.Client
	Store  store.Store
	Logger *slog.Logger

	once   sync.Once
	limits *hourly
}

// wecomLimits counts the WeCom ticket fetches of every credential built
// with env.
func (env *Env) wecomLimits() *hourly {
	env.once.Do(func() { env.limits = &hourly{} })
	return env.limits
}

// Built is a configured credential made ready to run.
type Built struct {
	// Credential is its token credential.
	Credential token.Credential
	// Platform is set for a third-party platform.
	Platform *component.Platform
	// Receiver is the id WeChat's callback crypto is bound to (the
	// appid, corpid or component appid).
	Receiver string
	// CallbackToken and AESKey are the callback's keys; empty when the
	// credential has no callback configured.
	CallbackToken, AESKey string
}

// Callback says how WeChat signs and encrypts a kind's pushes.
type Callback struct {
	// Verify: WeChat checks the URL with a GET before saving it.
	Verify bool
	// Encrypted: every push, and the verification's echostr, is
	// encrypted (WeCom, platforms). Otherwise pushes are plain, or in
	// safe mode when the query says encrypt_type=aes (Official Accounts).
	Encrypted bool
	// Authorizers: the URL's "$APPID$" form takes the messages of the
	// platform's authorizers, sealed with the platform's keys
	// (/callback/{kind}/{id}/{appid}). A WeCom suite's data callback is
	// sealed for each corp instead, and is not taken.
	Authorizers bool
	// VerifyAnyReceiver: the verification's echostr is sealed for an id
	// the credential's configuration does not hold, so its receive id is
	// not checked (the signature is). Pushes are checked all the same.
	VerifyAnyReceiver bool
}

// Registry is a set of kinds. Default holds the built-in ones.
type Registry struct {
	mu    sync.RWMutex
	kinds []*Kind
}

// Default is the registry of the kinds wxtoken ships with; its kinds
// register themselves, and configuration validates against it.
var Default = &Registry{}

func init() { config.UseKinds(Default) }

// Register adds k. It panics on a duplicate name, as database/sql's
// Register does: two declarations of one kind are a programming error.
func (r *Registry) Register(k *Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.kinds, func(o *Kind) bool { return o.Name == k.Name }) {
		panic(fmt.Sprintf("kind: %q registered twice", k.Name))
	}
	r.kinds = append(r.kinds, k)
}

// Lookup returns the kind named name.
func (r *Registry) Lookup(name string) (*Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.kinds {
		if k.Name == name {
			return k, true
		}
	}
	return nil, false
}

// All returns the kinds by name.
func (r *Registry) All() []*Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Clone(r.kinds)
	slices.SortFunc(out, func(a, b *Kind) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Without returns a copy of r without the kinds named.
func (r *Registry) Without(names ...string) *Registry {
	out := &Registry{}
	for _, k := range r.All() {
		if !slices.Contains(names, k.Name) {
			out.kinds = append(out.kinds, k)
		}
	}
	return out
}

// Names implements config.Kinds.
func (r *Registry) Names() []string {
	var out []string
	for _, k := range r.All() {
		out = append(out, k.Name)
	}
	return out
}

// Rules implements config.Kinds.
func (r *Registry) Rules(name string) (config.KindRules, bool) {
	k, ok := r.Lookup(name)
	if !ok {
		return nil, false
	}
	return rules{k}, true
}

// rules adapts a Kind to what configuration needs of it.
type rules struct{ k *Kind }

func (r rules) SetDefaults(cr *config.Credential) {
	if r.k.Defaults != nil {
		r.k.Defaults(cr)
	}
}

func (r rules) Fields() []string  { return r.k.Fields }
func (r rules) Authorizers() bool { return r.k.Authorizers }
func (r rules) TicketTypes() []string {
	var out []string
	for _, t := range r.k.Tickets {
		out = append(out, t.Type)
	}
	return out
}

func (r rules) Validate(cr config.Credential, bad func(field, format string, args ...any)) {
	if r.k.Validate != nil {
		r.k.Validate(cr, bad)
	}
}
