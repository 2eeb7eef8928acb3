package token

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestStoreOutageLongerThanTokens: three instances on one real Redis,
// Redis stopped for several token lifetimes. Stable tokens and WeCom
// tokens that WeChat repeats while valid stay served throughout, each
// instance fetching them alone with normal calls (never forced), and no
// token handed out is dead. A classic token, whose fetch would end the
// token the other instances serve, is never fetched alone: it is answered
// with 503 once it expires, never served dead. When Redis returns, every
// credential is served again.
func TestStoreOutageLongerThanTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs about 40 s of real time")
	}
	const life = 6 * time.Second
	srv := redistest.New(t, redistest.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newHarness(t, wxtest.Config{Lifetime: life, Overlap: 2 * time.Second, StableRenewBefore: 2 * time.Second, WeComRepeat: true})
	creds := []Credential{h.classic("wx1"), h.stable("wx2"), h.wecom("ww1")}
	var ms []*Manager
	for range 3 {
		cfg := Config{Store: openRedis(t, srv, log), Logger: log, Overlap: 2 * time.Second, LockTTL: 2 * time.Second,
			FetchTimeout: time.Second, MaxBackoff: 2 * time.Second, Resync: time.Second}
		m, err := New(cfg, creds)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		ms = append(ms, m)
	}
	use := func(id, tok string) error {
		if id == "ww1" {
			_, err := h.client.WeComAPIDomainIP(t.Context(), tok)
			return err
		}
		_, err := h.client.CallbackIP(t.Context(), tok)
		return err
	}
	// poll asks every instance for every token for d, using each one
	// handed out, and counts the refusals per credential.
	poll := func(d time.Duration) map[string]int {
		refused := map[string]int{}
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, m := range ms {
				for _, c := range creds {
					s, err := m.Await(t.Context(), c.ID) // as GET /v1/tokens/{id} does
					if err != nil {
						refused[c.ID]++
						continue
					}
					if err := use(c.ID, s.Token); err != nil {
						t.Fatalf("%s: a dead token was served at %s: %v", c.ID, time.Now().Format(time.StampMilli), err)
					}
				}
			}
		}
		return refused
	}
	poll(2 * life) // settle: every credential has been fetched and refreshed

	srv.Stop()
	refused := poll(4 * life)
	t.Logf("refusals during a %s store outage: %v", 4*life, refused)
	for _, id := range []string{"wx2", "ww1"} {
		if refused[id] != 0 {
			t.Errorf("%s refused %d times during the store outage, want 0", id, refused[id])
		}
	}
	if refused["wx1"] == 0 {
		t.Errorf("the classic token was served through an outage longer than its life: it must have been fetched alone")
	}
	if forced := h.fake.Stats("wx2").StableForced; forced != 0 {
		t.Errorf("%d forced stable calls, want 0", forced)
	}

	srv.Start()
	time.Sleep(3 * time.Second)
	if refused := poll(life); refused["wx1"] > 3*len(ms) {
		t.Errorf("after Redis returned, classic refusals = %d", refused["wx1"])
	}
}
