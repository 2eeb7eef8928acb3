package component

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// TicketLife is how long WeChat accepts a component_verify_ticket.
const TicketLife = 12 * time.Hour

// SuiteTicketLife is how long WeCom accepts a suite_ticket: 30 minutes,
// so that it survives two missed pushes of the ten-minute cycle.
const SuiteTicketLife = 30 * time.Minute

// ticket is the stored ticket (component_verify_ticket, suite_ticket)
// under "ticket/<id>".
type ticket struct {
	Value string `json:"ticket"`
	// Created is WeChat's CreateTime (WeCom's TimeStamp) of the push; a
	// push created before the stored one (a replay, or a late delivery)
	// does not replace it.
	Created    time.Time `json:"created"`
	ReceivedAt time.Time `json:"received_at"`
	// Refused: WeChat refused this ticket (61005, 61006; WeCom 40085).
	// Calling with it again would be refused again: the platform waits
	// for the next push instead.
	Refused bool `json:"refused,omitempty"`
}

func ticketKey(id string) string { return "ticket/" + id }

// usable reports whether the ticket can still fetch a token at now, for
// a ticket that lives life.
func (t ticket) usable(now time.Time, life time.Duration) bool {
	return t.Value != "" && !t.Refused && now.Before(t.ReceivedAt.Add(life))
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

// refuseTicket marks the stored ticket refused, if it is still t.
func refuseTicket(ctx context.Context, s store.Store, id string, t ticket) error {
	for {
		cur, ver, err := loadTicket(ctx, s, id)
		if err != nil || cur.Value != t.Value || cur.Refused {
			return err // replaced meanwhile by a push: that one is untried
		}
		cur.Refused = true
		b, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		if _, err = s.Put(ctx, ticketKey(id), b, ver); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// TicketState is what a platform's stored ticket tells of WeChat's pushes.
type TicketState struct {
	// ReceivedAt is when the stored ticket arrived; zero if none is.
	ReceivedAt time.Time
	// Usable: the ticket can fetch the platform's token now.
	Usable bool
	// Refused: WeChat refused it; the platform waits for a push.
	Refused bool
	// Life is how long WeChat accepts a ticket after its push, and
	// Period how often it pushes one.
	Life, Period time.Duration
	// Name is the ticket's name: component_verify_ticket, suite_ticket.
	Name string
}

// Gap describes a gap in WeChat's pushes worth an operator's attention,
// or "" if there is none: no ticket, a refused one, or none pushed for
// more than two periods.
func (t TicketState) Gap(now time.Time) string {
	switch {
	case t.ReceivedAt.IsZero():
		return "no " + t.Name + " received yet"
	case t.Refused:
		return t.Name + " refused by WeChat; waiting for the next push"
	case !t.Usable:
		return fmt.Sprintf("no %s for %s: the last one expired", t.Name, now.Sub(t.ReceivedAt).Round(time.Second))
	case now.Sub(t.ReceivedAt) > 2*t.Period:
		return fmt.Sprintf("no %s pushed for %s (one comes every %s; it lives %s)", t.Name,
			now.Sub(t.ReceivedAt).Round(time.Second), t.Period, t.Life)
	}
	return ""
}

// Ticket reports the platform's stored ticket.
func (p *Platform) Ticket(ctx context.Context) (TicketState, error) {
	t, _, err := loadTicket(ctx, p.store, p.cfg.ID)
	return TicketState{ReceivedAt: t.ReceivedAt, Usable: t.usable(time.Now(), p.fam.ticketLife), Refused: t.Refused,
		Life: p.fam.ticketLife, Period: p.cfg.PushInterval, Name: p.fam.ticket}, err
}

// TicketGap is the Gap of the platform's stored ticket now.
func (p *Platform) TicketGap(ctx context.Context) (string, error) {
	t, err := p.Ticket(ctx)
	if err != nil {
		return "", err
	}
	return t.Gap(time.Now()), nil
}

// TicketReceived is when the platform's stored component_verify_ticket
// arrived; zero if none is stored. WeChat pushes one every ten minutes,
// so an old one means pushes are not arriving.
func (p *Platform) TicketReceived(ctx context.Context) (time.Time, error) {
	t, _, err := loadTicket(ctx, p.store, p.cfg.ID)
	return t.ReceivedAt, err
}
