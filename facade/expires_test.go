package facade

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// TestExpiresInHoldsNoSDKPastServeUntil: whatever is left of a token that
// is handed out (minLeft or more), and whichever SDK asks, the time the
// SDK caches the answer (expires_in less its margin) ends a second
// (transit) before the token's ServeUntil, and an SDK the client names
// caches it for a positive time, which silenceper's Redis cache requires.
// A client that names no SDK is safe with all of them.
func TestExpiresInHoldsNoSDKPastServeUntil(t *testing.T) {
	now := time.Unix(1_764_750_000, 0)
	lefts := []time.Duration{minLeft, minLeft + 999*time.Millisecond, 30 * time.Second, 59 * time.Second, 299 * time.Second,
		5 * time.Minute, 1499 * time.Second, 1500 * time.Second, 1501*time.Second + 700*time.Millisecond, time.Hour, 7140 * time.Second}
	for _, sdk := range append(SDKs(), "") {
		for ep := range endpoints {
			for _, left := range lefts {
				snap := &token.Snapshot{Token: "t", ServeUntil: now.Add(left)}
				in := expiresIn(snap, now, sdk, ep)
				bound := left - transit
				// Each SDK that might be behind this client: the one it
				// names, or any.
				asking := []string{sdk}
				if sdk == "" {
					asking = SDKs()
				}
				for _, by := range asking {
					cached := time.Duration(in-sdkMargins[by][ep]) * time.Second
					if cached > bound {
						t.Errorf("%s (client says %q), endpoint %d, %s left: expires_in %d, cached %s, past ServeUntil",
							by, sdk, ep, left, in, cached)
					}
				}
				if sdk != "" && in-sdkMargins[sdk][ep] <= 0 {
					t.Errorf("%s, endpoint %d, %s left: expires_in %d leaves the SDK a TTL of %d s",
						sdk, ep, left, in, in-sdkMargins[sdk][ep])
				}
			}
		}
	}
}

// TestExpiresInWithoutMargin: a client naming no SDK is answered what is
// left less the transit second, in whole seconds.
func TestExpiresInWithoutMargin(t *testing.T) {
	now := time.Unix(1_764_750_000, 0)
	for _, c := range []struct {
		left time.Duration
		want int64
	}{{minLeft, 1}, {1500*time.Second + 999*time.Millisecond, 1499}, {7140 * time.Second, 7139}} {
		t.Run(fmt.Sprint(c.left), func(t *testing.T) {
			if got := expiresIn(&token.Snapshot{Token: "t", ServeUntil: now.Add(c.left)}, now, "", classicToken); got != c.want {
				t.Errorf("expires_in = %d, want %d", got, c.want)
			}
		})
	}
}

func TestCheckSDK(t *testing.T) {
	for _, name := range append(SDKs(), "") {
		if err := CheckSDK(name); err != nil {
			t.Errorf("CheckSDK(%q) = %v", name, err)
		}
	}
	if err := CheckSDK("Silenceper"); err == nil {
		t.Error("CheckSDK accepted an unknown name")
	}
}
