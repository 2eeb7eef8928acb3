package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Key prefixes in the store.
const (
	queuePrefix = "gw/q/"
	deadPrefix  = "gw/dead/"
	replyPrefix = "gw/reply/"
)

// Entry is one message queued for one destination, as stored.
type Entry struct {
	Credential string `json:"credential"`
	// Authorizer is the appid of the platform's authorizer the message
	// is for, if it is.
	Authorizer string `json:"authorizer,omitempty"`
	Rule       string `json:"rule"`
	// ID is the message id.
	ID string `json:"id"`
	// Delivery is the X-Wxtoken-Delivery of every attempt.
	Delivery   string    `json:"delivery"`
	ReceivedAt time.Time `json:"received_at"`
	// QueuedAt starts the time to dead letter: the reception, or the
	// last re-drive.
	QueuedAt  time.Time `json:"queued_at"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Body is what is POSTed: the contract's JSON.
	Body json.RawMessage `json:"body"`
}

// payload is the JSON body a destination receives.
type payload struct {
	Credential string            `json:"credential"`
	ID         string            `json:"id"`
	ReceivedAt string            `json:"received_at"`
	Message    map[string]string `json:"message"`
	XML        string            `json:"xml"`
}

func body(credential string, m Message, now time.Time) ([]byte, error) {
	return json.Marshal(payload{Credential: source(credential, m.Authorizer), ID: m.ID, ReceivedAt: now.UTC().Format(time.RFC3339),
		Message: m.Fields, XML: string(m.XML)})
}

// lane names the sequence an entry is delivered in: its credential, rule
// and user. A later entry of a lane waits for the earlier ones.
func lane(credential, rule, user string) string {
	return credential + "/" + rule + "/" + digest(user)
}

// order sorts a lane's entries: WeChat's CreateTime first (instances'
// clocks differ; WeChat's is one), then the time of reception, then the id.
func order(m Message, now time.Time) string {
	ct, err := strconv.ParseInt(m.Fields["CreateTime"], 10, 64)
	if err != nil || ct < 0 {
		ct = now.Unix()
	}
	return fmt.Sprintf("%012d.%019d.%s", ct, now.UnixNano(), digest(m.key())[:8])
}

func (g *Gateway) enqueue(ctx context.Context, credential string, r Rule, m Message, now time.Time) error {
	b, err := body(credential, m, now)
	if err != nil {
		return fmt.Errorf("gateway: encoding message %s: %w", m.ID, err)
	}
	e := Entry{Credential: credential, Authorizer: m.Authorizer, Rule: r.Name, ID: m.ID, Delivery: rand.Text(), ReceivedAt: now, QueuedAt: now, Body: b}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("gateway: encoding entry: %w", err)
	}
	key := queuePrefix + lane(credential, r.Name, m.user()) + "/" + order(m, now)
	if _, err := g.st.Put(ctx, key, v, 0); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("gateway: queuing message %s for %s: %w", m.ID, r.Name, err)
	}
	g.poke()
	return nil
}

func sortedRules(m map[string]Rule) []Rule {
	out := make([]Rule, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// laneOf is the lane of a queue or dead-letter key without its prefix.
func laneOf(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return ""
	}
	return key[:i]
}

func decodeEntry(v []byte) (Entry, error) {
	var e Entry
	err := json.Unmarshal(v, &e)
	return e, err
}
