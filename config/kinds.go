package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Kinds is the set of credential kinds a configuration may use. Package
// kind declares them and installs its registry with UseKinds, as
// database/sql's drivers register themselves: configuration never names a
// kind itself.
type Kinds interface {
	// Names lists the kinds, in the order they are shown.
	Names() []string
	// Rules returns the rules of the kind named name.
	Rules(name string) (KindRules, bool)
}

// KindRules are what configuration needs of one kind.
type KindRules interface {
	// SetDefaults fills the fields the kind defaults.
	SetDefaults(*Credential)
	// Fields are the fields the kind takes besides id, kind and secret.
	Fields() []string
	// Validate checks the kind's own fields.
	Validate(cr Credential, bad func(field, format string, args ...any))
	// Authorizers: the kind's credentials create others at run time,
	// which clients may be allowed ("<id>/*") and may import.
	Authorizers() bool
	// TicketTypes are the JS-SDK tickets the kind may enable.
	TicketTypes() []string
}

var kinds struct {
	sync.RWMutex
	k Kinds
}

// UseKinds installs the kinds Parse and Validate check credentials
// against.
func UseKinds(k Kinds) {
	kinds.Lock()
	defer kinds.Unlock()
	kinds.k = k
}

func installedKinds() Kinds {
	kinds.RLock()
	defer kinds.RUnlock()
	return kinds.k
}

// noKinds is what an empty installation offers: nothing.
type noKinds struct{}

func (noKinds) Names() []string                { return nil }
func (noKinds) Rules(string) (KindRules, bool) { return nil, false }

// commonFields are taken by every kind.
var commonFields = []string{"id", "kind", "secret"}

// validateKind checks cr against its kind's rules: the kind exists, no
// field it does not take is set, its tickets are ones it has, and its own
// rules hold.
func validateKind(ks Kinds, cr Credential, bad func(field, format string, args ...any)) {
	r, ok := ks.Rules(cr.Kind)
	if !ok {
		bad("kind", "want %s, got %q", orList(ks.Names()), cr.Kind)
		return
	}
	taken := append(slices.Clone(commonFields), r.Fields()...)
	v := reflect.ValueOf(cr)
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" && !v.Field(i).IsZero() && !slices.Contains(taken, name) {
			bad(name, "not used by kind %s (it takes %s)", cr.Kind, strings.Join(append([]string{"secret"}, r.Fields()...), ", "))
		}
	}
	types := r.TicketTypes()
	seen := map[string]bool{}
	for _, t := range cr.Tickets {
		switch {
		case !slices.Contains(types, t):
			bad("tickets", "kind %s has no ticket %q (it has %s)", cr.Kind, t, orList(types))
		case seen[t]:
			bad("tickets", "%q listed twice", t)
		}
		seen[t] = true
	}
	r.Validate(cr, bad)
}

// orList writes "a, b or c".
func orList(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (c *Config) kinds() Kinds {
	if c.kindSet != nil {
		return c.kindSet
	}
	if k := installedKinds(); k != nil {
		return k
	}
	return noKinds{}
}

func (c *Config) authorizerParents() map[string]bool {
	out := map[string]bool{}
	for _, cr := range c.Credentials {
		if r, ok := c.kinds().Rules(cr.Kind); ok && r.Authorizers() {
			out[cr.ID] = true
		}
	}
	return out
}
