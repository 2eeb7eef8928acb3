package token

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// TestWeComRollover: a WeCom gettoken that answers the same token until it
// expires cannot be replaced ahead of time. Pollers asking every 100 ms
// through several 30 s cycles must never be refused: the token is served
// to its expiry, fetched just after, and a request in between waits for
// that fetch. Each token handed out works upstream.
func TestWeComRollover(t *testing.T) {
	for _, life := range []time.Duration{30 * time.Second, 2 * time.Hour} {
		for _, repeat := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, repeat=%v", life, repeat), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					overlap := life / 3
					h := newHarness(t, wxtest.Config{Lifetime: life, Overlap: overlap, WeComRepeat: repeat},
						func(c *Config) { c.Overlap = overlap })
					m := h.start(t, h.wecom("ww1"))
					synctest.Wait()
					refused, served := 0, 0
					for range 2000 { // six or seven cycles
						time.Sleep(life / 300)
						s, err := m.Await(t.Context(), "ww1")
						if err != nil {
							refused++
							t.Logf("%s: %v", time.Now().Format(time.TimeOnly), err)
							continue
						}
						served++
						if _, err := h.client.WeComAPIDomainIP(t.Context(), s.Token); err != nil {
							t.Fatalf("token served at %s fails upstream: %v", time.Now().Format(time.TimeOnly), err)
						}
					}
					if refused != 0 {
						t.Errorf("%d of %d polls refused across the rollovers, want 0", refused, refused+served)
					}
					if issued := h.fake.Stats("ww1").Issued; issued < 6 {
						t.Errorf("%d tokens issued in six cycles, want a new one each cycle", issued)
					}
				})
			})
		}
	}
}
