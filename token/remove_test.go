package token

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// A removed credential is neither served nor refreshed, its derived
// credentials go with it, and adding it again takes up its stored token
// without a fetch.
func TestRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		c := h.classic("wxremove")
		other := h.classic("wxother")
		m := h.start(t, c, other)
		synctest.Wait()
		before, err := m.Token("wxremove")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Remove("wxremove"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Token("wxremove"); !errors.Is(err, ErrUnknown) {
			t.Fatalf("Token after Remove: %v, want ErrUnknown", err)
		}
		if err := m.Remove("wxremove"); !errors.Is(err, ErrUnknown) {
			t.Errorf("second Remove: %v, want ErrUnknown", err)
		}
		if _, err := m.Refresh(t.Context(), "wxremove"); !errors.Is(err, ErrUnknown) {
			t.Errorf("Refresh after Remove: %v, want ErrUnknown", err)
		}
		for _, id := range m.IDs() {
			if id == "wxremove" {
				t.Errorf("IDs still lists the removed credential: %v", m.IDs())
			}
		}
		calls := h.fake.Stats("wxremove").ClassicCalls
		time.Sleep(6 * time.Hour) // three token lives: the other one refreshes, the removed one must not
		synctest.Wait()
		if got := h.fake.Stats("wxremove").ClassicCalls; got != calls {
			t.Errorf("removed credential fetched %d times after Remove", got-calls)
		}
		if !h.use(t, "wxother") {
			t.Error("the other credential stopped being served")
		}
		// Added again: the record is still there. Its token has ended by
		// now, so it fetches once.
		if err := m.Add(t.Context(), c, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		after, err := m.Token("wxremove")
		if err != nil {
			t.Fatal(err)
		}
		if after.Token == before.Token {
			t.Error("served the token of six hours ago")
		}
		if got := h.fake.Stats("wxremove").ClassicCalls; got != calls+1 {
			t.Errorf("%d fetches on re-adding after expiry, want 1", got-calls)
		}
	})
}

// Re-adding at once serves the stored token: no fetch.
func TestRemoveAddKeepsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{})
		c := h.classic("wxkeep")
		m := h.start(t, c)
		synctest.Wait()
		before, _ := m.Token("wxkeep")
		calls := h.fake.Stats("wxkeep").ClassicCalls
		if err := m.Remove("wxkeep"); err != nil {
			t.Fatal(err)
		}
		if err := m.Add(t.Context(), c, nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		after, err := m.Token("wxkeep")
		if err != nil || after.Token != before.Token {
			t.Fatalf("after re-adding: %v %v, want the stored token", after, err)
		}
		if got := h.fake.Stats("wxkeep").ClassicCalls; got != calls {
			t.Errorf("%d fetches on re-adding, want 0", got-calls)
		}
	})
}

// A credential blocked by a spent daily quota is refreshed at once when
// unblocked (after the quota was cleared upstream), not at midnight.
func TestUnblock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, wxtest.Config{DailyLimit: 1})
		c := h.classic("wxquota")
		m := h.start(t, c)
		synctest.Wait()
		first, err := m.Token("wxquota")
		if err != nil {
			t.Fatal(err)
		}
		// The second fetch of the day is refused: 45009.
		time.Sleep(time.Minute) // past MinForceInterval
		if _, err := m.Refresh(t.Context(), "wxquota"); wechat.ErrCode(err) != 45009 {
			t.Fatalf("a second fetch within a daily limit of 1: %v, want 45009", err)
		}
		time.Sleep(time.Minute)
		if _, err := m.Refresh(t.Context(), "wxquota"); !errors.As(err, new(*BlockedError)) {
			t.Fatalf("a refresh past the quota: %v, want it blocked until midnight", err)
		}
		if err := h.client.ClearQuota(t.Context(), "wxquota", "secret-wxquota"); err != nil {
			t.Fatal(err)
		}
		calls := h.fake.Stats("wxquota").ClassicCalls
		if _, err := m.Unblock(t.Context(), "wxquota"); err != nil {
			t.Fatal(err)
		}
		// The refresh that was asked for and refused is made now.
		synctest.Wait()
		if got := h.fake.Stats("wxquota").ClassicCalls - calls; got != 1 {
			t.Errorf("%d fetches after Unblock, want the 1 that was asked for", got)
		}
		now, err := m.Token("wxquota")
		if err != nil || now.Token == first.Token {
			t.Fatalf("after Unblock: %+v %v, want a new token", now, err)
		}
		if _, err := m.Unblock(t.Context(), "nosuch"); !errors.Is(err, ErrUnknown) {
			t.Errorf("Unblock of an unknown id: %v", err)
		}
	})
}
