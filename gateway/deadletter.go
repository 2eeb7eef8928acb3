package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// ErrNoDeadLetter reports a dead-letter id that names none.
var ErrNoDeadLetter = errors.New("gateway: no such dead letter")

// DeadLetter is a queued message given up on, as the admin API lists it.
type DeadLetter struct {
	// ID names it for Redrive.
	ID         string    `json:"id"`
	Credential string    `json:"credential"`
	Authorizer string    `json:"authorizer,omitempty"`
	Rule       string    `json:"rule"`
	MessageID  string    `json:"message_id"`
	ReceivedAt time.Time `json:"received_at"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"last_error,omitempty"`
}

// deadID turns a dead letter's key into an id of one URL path segment:
// keys hold "/", which ids, rule names and digests never hold, and "~",
// which none of them holds either.
func deadID(key string) string {
	return strings.ReplaceAll(strings.TrimPrefix(key, deadPrefix), "/", "~")
}

func deadKey(id string) (string, bool) {
	if id == "" || strings.ContainsAny(id, "/") || len(id) > store.MaxKeyLen-len(deadPrefix) {
		return "", false
	}
	return deadPrefix + strings.ReplaceAll(id, "~", "/"), true
}

// DeadLetters lists the dead letters, oldest lane first.
func (g *Gateway) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	list, err := g.st.Load(ctx, deadPrefix)
	if err != nil {
		return nil, fmt.Errorf("gateway: listing dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(list))
	for _, ke := range list {
		d := DeadLetter{ID: deadID(ke.Key)}
		if e, err := decodeEntry(ke.Value); err == nil {
			d.Credential, d.Authorizer, d.Rule, d.MessageID, d.ReceivedAt, d.Attempts, d.LastError = e.Credential, e.Authorizer, e.Rule, e.ID, e.ReceivedAt, e.Attempts, e.LastError
		} else {
			d.LastError = "undecodable entry: " + err.Error()
		}
		out = append(out, d)
	}
	return out, nil
}

// Redrive puts the dead letter id back in its lane of the queue, at its
// first place, with its retries and its time to dead letter started over.
func (g *Gateway) Redrive(ctx context.Context, id string) error {
	key, ok := deadKey(id)
	if !ok {
		return ErrNoDeadLetter
	}
	se, err := g.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoDeadLetter
	}
	if err != nil {
		return fmt.Errorf("gateway: reading dead letter: %w", err)
	}
	e, err := decodeEntry(se.Value)
	if err != nil {
		return fmt.Errorf("gateway: dead letter %s cannot be decoded: %w", id, err)
	}
	e.Attempts, e.NextAt, e.LastError, e.QueuedAt = 0, time.Time{}, "", g.cfg.Now()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	q := queuePrefix + strings.TrimPrefix(key, deadPrefix)
	if _, err := g.st.Put(ctx, q, v, 0); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("gateway: re-queuing dead letter: %w", err)
	}
	if err := g.st.Delete(ctx, key, se.Version); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("gateway: re-queued, but the dead letter stays: %w", err)
	}
	g.poke()
	return nil
}
