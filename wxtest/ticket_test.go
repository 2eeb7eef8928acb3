package wxtest

import (
	"testing"
	"time"
)

func TestTicket(t *testing.T) {
	e := newEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))

	jsapi := e.ticket(tok, "jsapi")
	if jsapi.ErrCode != 0 || jsapi.ErrMsg != "ok" || jsapi.Ticket == "" || jsapi.ExpiresIn != 7200 {
		t.Fatalf("jsapi ticket: %s", jsapi.Body)
	}
	again := e.ticket(tok, "jsapi")
	card := e.ticket(tok, "wx_card")
	if card.ErrCode != 0 || card.Ticket == "" {
		t.Fatalf("wx_card ticket: %s", card.Body)
	}
	if again.Ticket == jsapi.Ticket || card.Ticket == jsapi.Ticket {
		t.Errorf("tickets repeat; each call should issue a new one")
	}

	stable := mustToken(t, e.stable(appID, appSecret, false))
	if r := e.ticket(stable, "jsapi"); r.ErrCode != 0 {
		t.Errorf("ticket with a stable token: %s", r.Body)
	}

	tests := []struct {
		name, token, typ string
		code             int
	}{
		{"bad type", tok, "nope", codeInvalidArgs},
		{"no type", tok, "", codeInvalidArgs},
		{"no token", "", "jsapi", codeTokenMissing},
		{"garbage token", "xyz", "jsapi", codeInvalidToken},
	}
	for _, tt := range tests {
		if r := e.ticket(tt.token, tt.typ); r.ErrCode != tt.code || r.Ticket != "" {
			t.Errorf("%s: %s, want errcode %d", tt.name, r.Body, tt.code)
		}
	}

	e.clk.Advance(2 * time.Hour)
	if r := e.ticket(tok, "jsapi"); r.ErrCode != codeTokenExpired {
		t.Errorf("expired token: errcode %d, want %d", r.ErrCode, codeTokenExpired)
	}

	// Calls traced to the account: 3 good + 1 stable + 2 bad type + 1 expired.
	if got := e.f.Stats(appID).TicketCalls; got != 7 {
		t.Errorf("TicketCalls = %d, want 7", got)
	}
}
