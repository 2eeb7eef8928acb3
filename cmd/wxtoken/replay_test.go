package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

// A replayed push must be refused wherever it is sent while its timestamp
// would still pass: after a restart, and by every instance sharing Redis.
// The replay that matters is of an `unauthorized` push after the account
// has authorized again: accepted, it revokes the fresh authorization.

// recorder is the fake WeChat's push client: it keeps the last push sent,
// for a test to send again as an attacker who recorded it would.
type recorder struct {
	mu   sync.Mutex
	url  string
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.url, r.body = req.URL.String(), body
	r.mu.Unlock()
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	return http.DefaultTransport.RoundTrip(req)
}

// recorded is one push as WeChat sent it.
type recorded struct {
	url  string
	body []byte
}

// last returns the last push sent.
func (r *recorder) last() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorded{r.url, r.body}
}

// replay sends the push again, to the instance at addr.
func (p recorded) replay(t *testing.T, addr string) (int, string) {
	t.Helper()
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	resp, err := http.Post(u.String(), "text/xml", bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// platformWeChat runs the fake WeChat with the platform on a real
// listener, pushing through rec.
func platformWeChat(t *testing.T) (*wxtest.Fake, string, *recorder) {
	t.Helper()
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL, &recorder{}
}

// pushTo points the platform's pushes at the instance at addr.
func pushTo(fake *wxtest.Fake, rec *recorder, addr string) {
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", &http.Client{Transport: rec})
}

// TestReplayRefusedAfterRestart: a push replayed to the restarted process,
// within the timestamp window, is refused. Before, the nonces were kept in
// memory: the replayed `unauthorized` revoked the new authorization.
func TestReplayRefusedAfterRestart(t *testing.T) {
	fake, up, rec := platformWeChat(t)
	dir := t.TempDir()
	start := func() *Main {
		cfg, err := config.Parse([]byte(platformYAML(dir, up)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := m.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		pushTo(fake, rec, m.Addr())
		return m
	}
	m := start()
	getToken(t, m.Addr(), "plat")
	const auth = "wxauth01"
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	if err := fake.Unauthorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("unauthorize: %v", err)
	}
	unauthorized := rec.last()
	if status, body := unauthorized.replay(t, m.Addr()); status != http.StatusConflict {
		t.Fatalf("replay to the same process: %d %s, want 409", status, body)
	}
	m.Close()

	m = start()
	defer m.Close()
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("authorize again: %v", err)
	}
	getToken(t, m.Addr(), auth)
	if status, body := unauthorized.replay(t, m.Addr()); status != http.StatusConflict || !strings.Contains(body, `"replayed"`) {
		t.Errorf("replayed unauthorized after a restart: %d %s, want 409 replayed", status, body)
	}
	if _, err := m.tokens.Token(auth); err != nil {
		t.Fatalf("after the replay, %s: %v; want the new authorization kept", auth, err)
	}
}

// TestReplayRefusedByPeer: two instances share Redis; a push accepted by
// one and replayed to the other is refused. Before, each kept its own
// nonces. With Redis down, a push cannot be checked and is refused with
// 503, so that WeChat delivers it again, rather than accepted unchecked.
func TestReplayRefusedByPeer(t *testing.T) {
	fake, up, rec := platformWeChat(t)
	rs := redistest.New(t, redistest.Options{})
	cfg := clusterConfig{Redis: rs.Addr(), Upstream: up, Credentials: platformCredentials(),
		Refresh: "{overlap: 3s, min_force_interval: 100ms}"}
	a, b := startNode(t, cfg.yaml()), startNode(t, cfg.yaml())
	pushTo(fake, rec, a.addr())
	getToken(t, a.addr(), "plat")
	const auth = "wxauth01"
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	if err := fake.Unauthorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("unauthorize: %v", err)
	}
	unauthorized := rec.last()
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("authorize again: %v", err)
	}
	getToken(t, b.addr(), auth)
	if status, body := unauthorized.replay(t, b.addr()); status != http.StatusConflict || !strings.Contains(body, `"replayed"`) {
		t.Errorf("unauthorized accepted by a, replayed to b: %d %s, want 409 replayed", status, body)
	}
	if _, err := b.m.tokens.Token(auth); err != nil {
		t.Fatalf("after the replay, b: %s: %v; want the new authorization kept", auth, err)
	}

	// A push that changes nothing stored (an InfoType wxtoken ignores)
	// still needs its claim.
	rs.Stop()
	plain := fmt.Sprintf("<xml><AppId><![CDATA[%s]]></AppId><CreateTime>%d</CreateTime><InfoType><![CDATA[notify_unknown]]></InfoType></xml>",
		platformComp.AppID, time.Now().Unix())
	status, body, err := fake.PushRaw(t.Context(), platformComp.AppID, []byte(plain), nil)
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, "store_unavailable") {
		t.Fatalf("push with Redis down: %d %s (%v), want 503 store_unavailable", status, body, err)
	}
}
