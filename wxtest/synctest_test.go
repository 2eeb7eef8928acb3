package wxtest

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestSynctest runs a Fake with its default clock inside a synctest bubble:
// hours of token life pass in no real time, through Client.
func TestSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{})
		f.AddApp(appID, appSecret)
		c := caller{t: t, c: f.Client(), base: "https://api.weixin.qq.com"}

		first := mustToken(t, c.classic(appID, appSecret))
		second := mustToken(t, c.classic(appID, appSecret))
		stable := mustToken(t, c.stable(appID, appSecret, false))

		time.Sleep(5*time.Minute - time.Second)
		if got := c.use(first); got != 0 {
			t.Errorf("replaced token just inside the overlap: %d, want 0", got)
		}
		time.Sleep(time.Second)
		if got := c.use(first); got != codeInvalidCredential {
			t.Errorf("replaced token after the overlap: %d, want %d", got, codeInvalidCredential)
		}

		time.Sleep(2 * time.Hour)
		if got := c.use(second); got != codeTokenExpired {
			t.Errorf("token after its lifetime: %d, want %d", got, codeTokenExpired)
		}
		next := mustToken(t, c.stable(appID, appSecret, false))
		if next == stable {
			t.Errorf("stable call after expiry returned the expired token")
		}
	})
}
