package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wxtest"
)

var secondComp = wxtest.Component{AppID: "wx00000000000c0002", Secret: "comp-secret-2", Token: "comp-token-2",
	EncodingAESKey: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"}

// Keys of the namespace test's clients.
const (
	oneKey    = "one-key-0123456789"    // allow: [plat/wxauth01]
	secondKey = "second-key-0123456789" // allow: [plat2/*]
	noneKey   = "none-key-0123456789"   // allow: [plat]
)

// TestAuthorizerNamespaces: an authorizer is served as {platform}/{appid}
// on every /v1/tokens route, and by its bare appid (its id before ids had
// namespaces) while one platform holds it; a client may be allowed one
// authorizer by its id. Once a second platform holds the same account,
// each platform's authorizer is served apart, and the bare appid is
// ambiguous (409, naming only what the client may see) or forbidden.
func TestAuthorizerNamespaces(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	fake.AddComponent(secondComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	yaml := strings.Replace(platformYAML(t.TempDir(), srv.URL), "clients:\n", fmt.Sprintf(`  - id: plat2
    kind: component
    component_appid: %s
    secret: %s
    token: %s
    encoding_aes_key: %s
clients:
  - {name: one, key: %s, allow: [plat/wxauth01]}
  - {name: second, key: %s, allow: [plat2/*]}
  - {name: none, key: %s, allow: [plat]}
`, secondComp.AppID, secondComp.Secret, secondComp.Token, secondComp.EncodingAESKey, oneKey, secondKey, noneKey), 1)
	yaml = strings.Replace(yaml, "allow: [plat, plat/*]}", "allow: [plat, plat/*, plat2]}", 1)
	addr := runYAML(t, yaml).Addr()
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
	fake.SetPushTarget(secondComp.AppID, "http://"+addr+"/callback/component/plat2", nil)
	getToken(t, addr, "plat")
	getToken(t, addr, "plat2")
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, "wxauth01"); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, key, body string) (int, string) {
		t.Helper()
		return keyCall(t, addr, method, path, key, body)
	}
	tokenOf := func(body string) string {
		var r struct {
			ID          string `json:"id"`
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal([]byte(body), &r)
		return r.ID + " " + r.AccessToken
	}

	served := getToken(t, addr, "plat/wxauth01").AccessToken
	want := "plat/wxauth01 " + served
	for _, tt := range []struct{ path, key string }{
		{"/v1/tokens/plat/wxauth01", clientKey},
		{"/v1/tokens/wxauth01", clientKey},
		{"/v1/tokens/wxauth01", oneKey},
		{"/v1/tokens/plat/wxauth01", oneKey},
	} {
		if status, body := call("GET", tt.path, tt.key, ""); status != 200 || tokenOf(body) != want {
			t.Errorf("GET %s with %s: %d %s; want 200 with %s", tt.path, tt.key, status, body, want)
		}
	}
	if status, body := call("GET", "/v1/tokens/wxauth01", secondKey, ""); status != 403 {
		t.Errorf("GET the other platform's authorizer by its appid: %d %s, want 403", status, body)
	}
	if status, body := call("POST", "/v1/tokens/plat/wxauth01/invalidate", clientKey, fmt.Sprintf(`{"access_token":%q}`, served)); status != 200 || !strings.Contains(body, `"result":"live"`) {
		t.Errorf("report on the namespaced path: %d %s; want 200, live (WeChat still takes it)", status, body)
	}
	if status, body := call("GET", "/v1/tokens", oneKey, ""); status != 200 || !strings.Contains(body, `"id":"plat/wxauth01"`) {
		t.Errorf("listing for a client allowed one authorizer: %d %s; want plat/wxauth01 listed", status, body)
	}

	// The same account authorizes the second platform.
	if _, err := fake.Authorize(t.Context(), secondComp.AppID, "wxauth01"); err != nil {
		t.Fatal(err)
	}
	var status int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if status, body = call("GET", "/v1/tokens/plat2/wxauth01", secondKey, ""); status == 200 {
			break
		}
	}
	if status != 200 || !strings.HasPrefix(tokenOf(body), "plat2/wxauth01 ") {
		t.Fatalf("GET plat2/wxauth01: %d %s", status, body)
	}
	if status, body := call("GET", "/v1/tokens/plat/wxauth01", clientKey, ""); status != 200 || !strings.HasPrefix(tokenOf(body), "plat/wxauth01 ") {
		t.Errorf("GET plat/wxauth01 beside plat2's: %d %s", status, body)
	}
	for _, tt := range []struct {
		key, path string
		status    int
		want      string
	}{
		{clientKey, "/v1/tokens/wxauth01", 409, `"code":"ambiguous"`},
		{secondKey, "/v1/tokens/wxauth01", 409, `plat2/wxauth01`},
		{oneKey, "/v1/tokens/wxauth01", 409, `plat/wxauth01`},
		{noneKey, "/v1/tokens/wxauth01", 403, `"code":"forbidden"`},
		{noneKey, "/v1/tokens/plat/wxauth01", 403, `"code":"forbidden"`},
	} {
		status, body := call("GET", tt.path, tt.key, "")
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s with %s: %d %s; want %d with %s", tt.path, tt.key, status, body, tt.status, tt.want)
		}
		if (tt.key == clientKey || tt.key == oneKey) && strings.Contains(body, "plat2") {
			t.Errorf("the ambiguity answer names a credential the client may not see: %s", body)
		}
	}
}

// TestClusterMovesAuthorizersToTheirNamespace: three instances start
// together on a Redis store written before ids had namespaces (authorizers
// under their bare appids). Each moves what it finds, racing the others:
// every instance serves each authorizer's stored token under its new id
// and its old one, the old keys are gone, and no token was fetched.
func TestClusterMovesAuthorizersToTheirNamespace(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rs := redistest.New(t, redistest.Options{})
	cfg := clusterConfig{Redis: rs.Addr(), Upstream: srv.URL, Credentials: platformCredentials()}
	hc := newHTTPClient(t)
	auths := []string{"wxauth01", "wxauth02", "wxauth03"}

	first := startNode(t, cfg.yaml())
	fake.SetPushTarget(platformComp.AppID, "http://"+first.addr()+"/callback/component/plat", nil)
	awaitToken(t, hc, first.addr(), "plat", 10*time.Millisecond, 15*time.Second, nil)
	served := map[string]string{}
	for _, a := range auths {
		if _, err := fake.Authorize(t.Context(), platformComp.AppID, a); err != nil {
			t.Fatal(err)
		}
		served[a] = awaitToken(t, hc, first.addr(), "plat/"+a, 10*time.Millisecond, 15*time.Second, nil).AccessToken
	}
	first.stop()

	rc, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{rs.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for _, a := range auths { // the store as an earlier version wrote it
		e, err := rc.Get(t.Context(), "token/plat/"+a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Put(t.Context(), "token/"+a, e.Value, 0); err != nil {
			t.Fatal(err)
		}
		if err := rc.Delete(t.Context(), "token/plat/"+a, e.Version); err != nil {
			t.Fatal(err)
		}
	}
	calls := map[string]int{}
	for _, a := range auths {
		calls[a] = fake.Stats(a).AuthorizerTokenCalls
	}

	// Start three instances at once.
	nodes := make([]*Main, 3)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		c, err := config.Parse([]byte(cfg.yaml()), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &Main{Config: c, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
		wg.Go(func() { errs[i] = nodes[i].Run(t.Context()) })
	}
	wg.Wait()
	for i, m := range nodes {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		t.Cleanup(func() { m.Close() })
	}
	for i, m := range nodes {
		for _, a := range auths {
			for _, id := range []string{"plat/" + a, a} {
				if status, tr, err := askToken(t.Context(), hc, m.Addr(), id); status != 200 || tr.AccessToken != served[a] {
					t.Errorf("instance %d serves %s: %d %q (%v); want the stored token %q", i, id, status, tr.AccessToken, err, served[a])
				}
			}
		}
	}
	for _, a := range auths {
		if _, err := rc.Get(t.Context(), "token/"+a); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token/%s still stored after the move: %v", a, err)
		}
		if n := fake.Stats(a).AuthorizerTokenCalls - calls[a]; n != 0 {
			t.Errorf("%s: %d fetches for the move, want 0", a, n)
		}
	}
}
