package kind

import (
	"testing"
	"time"
)

// TestWeComTicketLimits: WeCom allows 400 ticket fetches an hour per corp
// and 100 per application; a fetch beyond either is not made, and waits
// for the next hour.
func TestWeComTicketLimits(t *testing.T) {
	h := &hourly{}
	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	for i := range appTicketsPerHour {
		if _, ok := h.take(now, "corp", "app0"); !ok {
			t.Fatalf("fetch %d of app0 refused", i+1)
		}
	}
	wait, ok := h.take(now, "corp", "app0")
	if ok || wait != 45*time.Minute {
		t.Fatalf("fetch 101 of one application: ok=%v wait %s, want refused until the next hour (45m)", ok, wait)
	}
	// Other applications of the corp share its 400.
	n := appTicketsPerHour
	for app := 1; n < corpTicketsPerHour; app++ {
		for range appTicketsPerHour {
			if n == corpTicketsPerHour {
				break
			}
			if _, ok := h.take(now, "corp", "app"+string(rune('0'+app))); !ok {
				t.Fatalf("corp fetch %d refused", n+1)
			}
			n++
		}
	}
	if _, ok := h.take(now, "corp", "app9"); ok {
		t.Fatal("corp fetch 401 in one hour made")
	}
	if _, ok := h.take(now, "other", "x"); !ok {
		t.Fatal("another corp refused")
	}
	if _, ok := h.take(now.Add(45*time.Minute), "corp", "app0"); !ok {
		t.Fatal("refused in the next hour")
	}
}
