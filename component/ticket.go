package component

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// TicketLife is how long WeChat accepts a component_verify_ticket.
const TicketLife = 12 * time.Hour

// ticket is the stored component_verify_ticket under "ticket/<id>".
type ticket struct {
	Value string `json:"ticket"`
	// Created is WeChat's CreateTime of the push; a push created before
	// the stored one (a replay, or a late delivery) does not replace it.
	Created    time.Time `json:"created"`
	ReceivedAt time.Time `json:"received_at"`
}

func ticketKey(id string) string { return "ticket/" + id }

// usable reports whether the ticket can still fetch a token at now.
func (t ticket) usable(now time.Time) bool {
	return t.Value != "" && now.Before(t.ReceivedAt.Add(TicketLife))
}

// loadTicket reads the stored ticket; a missing one is zero.
func loadTicket(ctx context.Context, s store.Store, id string) (ticket, uint64, error) {
	e, err := s.Get(ctx, ticketKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return ticket{}, 0, nil
	}
	if err != nil {
		return ticket{}, 0, err
	}
	var t ticket
	if err := json.Unmarshal(e.Value, &t); err != nil {
		return ticket{}, 0, err
	}
	return t, e.Version, nil
}

// saveTicket stores t unless the stored ticket was created later. It
// reports whether t was stored. Concurrent saves resolve by
// compare-and-swap, newest CreateTime winning.
func saveTicket(ctx context.Context, s store.Store, id string, t ticket) (bool, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return false, err
	}
	for {
		cur, ver, err := loadTicket(ctx, s, id)
		if err != nil {
			return false, err
		}
		if cur.Value != "" && cur.Created.After(t.Created) {
			return false, nil
		}
		if cur.Value == t.Value && cur.Created.Equal(t.Created) {
			return true, nil // a repeated delivery
		}
		_, err = s.Put(ctx, ticketKey(id), b, ver)
		if !errors.Is(err, store.ErrConflict) {
			return err == nil, err
		}
	}
}

// TicketReceived is when the platform's stored component_verify_ticket
// arrived; zero if none is stored. WeChat pushes one every ten minutes,
// so an old one means pushes are not arriving.
func (p *Platform) TicketReceived(ctx context.Context) (time.Time, error) {
	t, _, err := loadTicket(ctx, p.store, p.cfg.ID)
	return t.ReceivedAt, err
}
