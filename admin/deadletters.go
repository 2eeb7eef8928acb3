package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/wxtoken/wxtoken/gateway"
)

// DeadLetters are the message gateway's messages given up on: listed,
// and put back in the queue, through the admin API.
type DeadLetters interface {
	DeadLetters(ctx context.Context) ([]gateway.DeadLetter, error)
	Redrive(ctx context.Context, id string) error
}

func (a *Admin) listDeadLetters(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	list := []gateway.DeadLetter{}
	if a.cfg.DeadLetters != nil {
		var err error
		if list, err = a.cfg.DeadLetters.DeadLetters(ctx); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusOK, map[string]any{"dead_letters": list}, nil
}

func (a *Admin) redrive(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	id := r.PathValue("id")
	if a.cfg.DeadLetters == nil {
		return 0, nil, errorf(http.StatusNotFound, "not_found", "no dead letter "+id+": no callback forwards messages")
	}
	err := a.cfg.DeadLetters.Redrive(ctx, id)
	if errors.Is(err, gateway.ErrNoDeadLetter) {
		return 0, nil, errorf(http.StatusNotFound, "not_found", "no dead letter "+id)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"id": id, "result": "requeued"}, nil
}
