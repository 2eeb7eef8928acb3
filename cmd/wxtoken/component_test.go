package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

var platformComp = wxtest.Component{AppID: "wx00000000000c0001", Secret: "comp-secret", Token: "comp-token",
	EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}

func platformYAML(dataDir, up string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
upstream: {api: %s, api_failover: [], timeout: 2s}
refresh: {overlap: 3s, min_force_interval: 1s}
credentials:
  - id: plat
    kind: component
    component_appid: %s
    secret: %s
    token: %s
    encoding_aes_key: %s
clients:
  - {name: e2e, key: %s, allow: [plat, plat/*]}
`, dataDir, up, platformComp.AppID, platformComp.Secret, platformComp.Token, platformComp.EncodingAESKey, clientKey)
}

// buildBinary builds wxtoken into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wxtoken")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs "wxtoken serve" on the config file and returns the
// process and its API address, read from its log.
func startBinary(t *testing.T, bin, configPath string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", configPath)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "msg=listening addr="); ok {
				addr <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("server did not start")
	}
	return nil, ""
}

func serial(tok string) int {
	n, _ := strconv.Atoi(strings.SplitN(tok, "_", 2)[0])
	return n
}

// TestPlatformKill9 runs the binary as a third-party platform, kills it
// with SIGKILL at random moments while the authorizer's token and refresh
// token rotate every few seconds, and checks after every kill that the
// store holds the refresh token of every access token that was served
// (never a served token newer than the stored one), and that each restart
// serves at once with the stored ticket, asking WeChat for no push.
func TestPlatformKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the binary for about 20 s")
	}
	bin := buildBinary(t)
	fake := wxtest.New(wxtest.Config{Lifetime: 6 * time.Second, Overlap: 3 * time.Second})
	fake.AddComponent(platformComp)
	fake.SetRefreshTokenRotation(platformComp.AppID, 1)
	defer fake.Close()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "wxtoken.yaml")
	os.WriteFile(path, []byte(platformYAML(filepath.Join(dir, "data"), srv.URL)), 0o600)
	wc := &wechat.Client{API: srv.URL}

	cmd, addr := startBinary(t, bin, path)
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
	getToken(t, addr, "plat")
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, "wxauth01"); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	pushes := fake.Stats(platformComp.AppID).StartPushCalls

	for round := range 4 {
		// A business server uses every token it is served until the kill.
		var mu sync.Mutex
		maxServed := 0
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/tokens/wxauth01", nil)
				req.Header.Set("Authorization", "Bearer "+clientKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				var tr tokenReply
				json.NewDecoder(resp.Body).Decode(&tr)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if _, err := wc.CallbackIP(ctx, tr.AccessToken); err != nil && ctx.Err() == nil {
					t.Errorf("round %d: served authorizer token failed upstream: %v", round, err)
				}
				mu.Lock()
				maxServed = max(maxServed, serial(tr.AccessToken))
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
		time.Sleep(time.Duration(2000+rand.IntN(4000)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		stop()
		wg.Wait()

		s, err := bolt.Open(filepath.Join(dir, "data"))
		if err != nil {
			t.Fatal(err)
		}
		ent, err := s.Get(t.Context(), "token/plat/wxauth01")
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := token.DecodeStored(ent.Value)
		if rec.State == "" || serial(rec.Token) < maxServed {
			t.Fatalf("round %d: served token #%d but the store holds #%d (refresh token %q): a served token's refresh token was lost",
				round, maxServed, serial(rec.Token), rec.State)
		}

		cmd, addr = startBinary(t, bin, path)
		fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
		getToken(t, addr, "wxauth01")
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if got := fake.Stats(platformComp.AppID).StartPushCalls; got != pushes {
		t.Fatalf("restarts asked WeChat for %d ticket pushes, want 0: the stored ticket must be used", got-pushes)
	}
	if st := fake.Stats("wxauth01"); st.DeadUses != 0 || st.AuthorizerTokenCalls < 2 {
		t.Fatalf("authorizer stats %+v: want several refreshes and no dead use", st)
	}
}
