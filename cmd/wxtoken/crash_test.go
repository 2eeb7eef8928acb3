package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// TestKill9MidReportServesNoDeadToken: WeChat ended a token early, a
// client reported it, and the binary was killed (SIGKILL) after WeChat
// issued the replacement but before it was stored. The restarted server
// must not hand out the reported token: it refreshes at once, and a
// request meanwhile waits for that refresh. Every token it hands out
// works upstream.
func TestKill9MidReportServesNoDeadToken(t *testing.T) {
	bin := buildBinary(t)
	fake, up := upstream(t, wxtest.Config{})
	dir := t.TempDir()
	path := filepath.Join(dir, "wxtoken.yaml")
	os.WriteFile(path, []byte(configYAML(filepath.Join(dir, "data"), "127.0.0.1:0", up, 0)), 0o600)
	t.Setenv("WX1_SECRET", "secret1")
	t.Setenv("WX2_SECRET", "secret2")
	wc := &wechat.Client{API: up}

	for round := range 3 {
		cmd, addr := startBinary(t, bin, path)
		dead := getToken(t, addr, "wx1").AccessToken
		fake.Expire(app1) // as a second system fetching with the secret would
		fake.LoseAnswers(app1, 1)
		calls := fake.Stats(app1).ClassicCalls
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/tokens/wx1/invalidate",
				strings.NewReader(fmt.Sprintf(`{"access_token":%q}`, dead)))
			req.Header.Set("Authorization", "Bearer "+clientKey)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		for end := time.Now().Add(10 * time.Second); fake.Stats(app1).ClassicCalls == calls; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatal("the report never reached WeChat")
			}
		}
		cmd.Process.Kill() // WeChat has issued the replacement; it is not stored
		cmd.Wait()

		cmd, addr = startBinary(t, bin, path)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			status, tr, err := askToken(t.Context(), http.DefaultClient, addr, "wx1")
			if err != nil || status != http.StatusOK {
				continue // 503 is honest; a dead token is not
			}
			if tr.AccessToken == dead {
				t.Fatalf("round %d: the restarted server handed out the token reported dead", round)
			}
			if _, err := wc.CallbackIP(t.Context(), tr.AccessToken); err != nil {
				t.Fatalf("round %d: the restarted server handed out a dead token: %v", round, err)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
}
