package config

import (
	"fmt"
	"net/url"
	"time"
)

// Modes of a forward rule.
const (
	// ForwardQueue delivers from a durable queue, at least once, in order
	// per user; the default.
	ForwardQueue = "queue"
	// ForwardReply waits for the destination's answer and returns it to
	// WeChat as the passive reply.
	ForwardReply = "reply"
)

// MinForwardSecret is the shortest HMAC secret a forward rule takes.
const MinForwardSecret = 16

// MaxReplyTimeout bounds a reply rule's timeout: WeChat waits 5 seconds
// for the answer to a push, and the answer must still be encrypted and
// sent within them.
const MaxReplyTimeout = 4500 * time.Millisecond

// Forward is one rule of a callback's message gateway: the messages it
// matches are POSTed, signed, to To.
type Forward struct {
	// Name names the rule in logs, keys and the dead-letter API; unique
	// within its credential.
	Name string `yaml:"name" json:"name,omitempty"`
	// Match selects the messages; empty matches every message.
	Match Match `yaml:"match" json:"match,omitempty"`
	// To is the destination's http(s) URL.
	To string `yaml:"to" json:"to,omitempty"`
	// Mode is queue (default) or reply.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Secret keys the HMAC-SHA256 signature of every delivery; at least
	// MinForwardSecret characters. Never serialised.
	Secret string `yaml:"secret" json:"-"`
	// Timeout bounds one delivery (default 4s for reply, 10s for queue).
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Match selects messages by their fields; each list matches when the
// message's field is one of its values, and every list given must match.
type Match struct {
	MsgType        []string `yaml:"msg_type" json:"msg_type,omitempty"`
	Event          []string `yaml:"event" json:"event,omitempty"`
	InfoType       []string `yaml:"info_type" json:"info_type,omitempty"`
	EventKeyPrefix []string `yaml:"event_key_prefix" json:"event_key_prefix,omitempty"`
	// Authorizer lists the authorizer appids of a platform's messages.
	Authorizer []string `yaml:"authorizer" json:"authorizer,omitempty"`
}

// ValidateForward checks a callback's forward rules, for a credential of
// kind kind.
func ValidateForward(rules []Forward, kind string, bad func(field, format string, args ...any)) {
	names := map[string]bool{}
	replies := 0
	for i, f := range rules {
		field := func(name string) string { return fmt.Sprintf("callback.forward[%d].%s", i, name) }
		switch {
		case f.Name == "":
			bad(field("name"), "required")
		case !idPattern.MatchString(f.Name):
			bad(field("name"), "want [A-Za-z0-9._-]{1,64}, got %q", f.Name)
		case names[f.Name]:
			bad(field("name"), "%q is used by another rule of this credential", f.Name)
		}
		names[f.Name] = true
		if u, err := url.Parse(f.To); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(field("to"), "want an http(s) URL, got %q", f.To)
		}
		switch f.Mode {
		case "", ForwardQueue:
		case ForwardReply:
			replies++
			if replies > 1 {
				bad(field("mode"), "only one reply rule per credential: WeChat takes one answer to a push")
			}
			if f.Timeout > MaxReplyTimeout {
				bad(field("timeout"), "at most %s for a reply rule: WeChat waits 5s for the answer", MaxReplyTimeout)
			}
		default:
			bad(field("mode"), "want queue or reply, got %q", f.Mode)
		}
		if len(f.Secret) < MinForwardSecret {
			bad(field("secret"), "required, at least %d characters", MinForwardSecret)
		}
		if f.Timeout < 0 {
			bad(field("timeout"), "must not be negative")
		}
		for name, list := range map[string][]string{"msg_type": f.Match.MsgType, "event": f.Match.Event,
			"info_type": f.Match.InfoType, "event_key_prefix": f.Match.EventKeyPrefix, "authorizer": f.Match.Authorizer} {
			for _, v := range list {
				if v == "" {
					bad(field("match."+name), "empty value")
				}
			}
		}
		if len(f.Match.Authorizer) > 0 && kind != "component" {
			bad(field("match.authorizer"), "only for a platform's authorizers, not kind %s", kind)
		}
	}
}
