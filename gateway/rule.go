package gateway

import (
	"slices"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

// Default timeouts of a delivery.
const (
	// DefaultReplyTimeout leaves a second of WeChat's 5 for the rest.
	DefaultReplyTimeout = 4 * time.Second
	DefaultQueueTimeout = 10 * time.Second
)

// Rule is one configured destination of a credential's messages.
type Rule struct {
	config.Forward
}

// Reply reports whether the rule answers WeChat.
func (r Rule) Reply() bool { return r.Mode == config.ForwardReply }

// timeout is the rule's, or its mode's default.
func (r Rule) timeout() time.Duration {
	switch {
	case r.Timeout > 0:
		return r.Timeout
	case r.Reply():
		return DefaultReplyTimeout
	}
	return DefaultQueueTimeout
}

// Matches reports whether m is one of the rule's messages; authorizer is
// the authorizer appid of a platform's message, "" otherwise. Every list
// of the match that is set must hold the message's field.
func (r Rule) Matches(m Message, authorizer string) bool {
	mt := r.Match
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(mt.MsgType, m.Fields["MsgType"]) || !in(mt.Event, m.Fields["Event"]) ||
		!in(mt.InfoType, m.Fields["InfoType"]) || !in(mt.Authorizer, authorizer) {
		return false
	}
	if len(mt.EventKeyPrefix) > 0 {
		key := m.Fields["EventKey"]
		return slices.ContainsFunc(mt.EventKeyPrefix, func(p string) bool { return strings.HasPrefix(key, p) })
	}
	return true
}
