package component_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestSuiteTicketStoredBeforeCrash: an instance stored a pushed
// suite_ticket, answered "success", and died before fetching the suite
// token with it. WeCom will not push that ticket again, and no API asks
// for another; the stored record still plans the retry of the failure
// before the push (no ticket: TicketRetry, a minute, away). The next
// instance on the store fetches with the stored ticket at once.
func TestSuiteTicketStoredBeforeCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newSuiteFake(wxtest.Config{Lifetime: time.Hour}, suite)
		defer fake.Close()
		st := memory.New()
		dead := startSuite(t, suite, component.Config{}, st, fake, nil)
		synctest.Wait()
		if snap, _ := dead.tokens.Snapshot("suite"); snap.Cause == nil || snap.Cause.Class != "ticket" {
			t.Fatalf("cause before any push = %+v, want the missing ticket", snap.Cause)
		}
		// Its refreshes stop; its callback handler still stores the push.
		dead.tokens.Close()
		if _, err := fake.PushSuiteTicket(t.Context(), suite.SuiteID); err != nil {
			t.Fatalf("ticket push: %v", err)
		}
		if got := fake.Stats(suite.SuiteID).SuiteTokenCalls; got != 0 {
			t.Fatalf("get_suite_token calls = %d before the restart, want 0", got)
		}

		next := startSuite(t, suite, component.Config{}, st, fake, nil)
		time.Sleep(time.Second)
		if !next.useSuite("suite") {
			snap, _ := next.tokens.Snapshot("suite")
			t.Fatalf("no suite token a second after a restart with a usable ticket stored (next refresh in %v, cause %+v)",
				time.Until(snap.NextRefresh), snap.Cause)
		}
		if got := fake.Stats(suite.SuiteID).SuiteTokenCalls; got != 1 {
			t.Fatalf("get_suite_token calls = %d, want the one with the stored ticket", got)
		}
	})
}
