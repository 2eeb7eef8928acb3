package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoCommandsRun starts the demo and runs the commands it prints, as
// a user pasting them into a shell would: they must be valid shell, use a
// real key and real tokens, and get real answers (a token used upstream
// works; a reported token is replaced).
func TestDemoCommandsRun(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is required in CI")
		}
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--wechat-listen", "127.0.0.1:0"}, &out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo exit: %v", err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "Ctrl-C"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not print its commands:\n%s", out.String())
		}
	}
	_, rest, _ := strings.Cut(out.String(), "a server on ")
	base := strings.Fields(rest)[0]
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("demo never became ready")
		}
	}
	// Reports force a refresh only a min_force_interval after the last
	// fetch; the demo's is a second.
	time.Sleep(1100 * time.Millisecond)

	var script []string
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "  ") {
			script = append(script, strings.TrimSpace(line))
		}
	}
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", strings.Join(script, "\n"))
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the printed commands failed: %v\n%s\n--- output:\n%s", err, out.String(), got)
	}
	res := string(got)
	for _, want := range []string{`"credentials":[`, `"ip_list":[`, `"ready":true`, `"appId":"wxd000000000000001"`, `"signature":"`} {
		if !strings.Contains(res, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	// Four answers carry tokens: demo-oa's, the replacement of the
	// reported demo-mini token, the suite's corp's, and the facade's
	// demo-mini token.
	if n := strings.Count(res, `"access_token":"`); n < 4 {
		t.Errorf("%d tokens in the output, want 4", n)
	}
	if !strings.Contains(res, `"id":"demo-suite/`+demoCorp+`/tickets/jsapi"`) || !strings.Contains(res, `"ticket":"`) {
		t.Errorf("output lacks the suite's corp's jsapi ticket")
	}
	for _, bad := range []string{`"error"`, `"errcode":4`} {
		if strings.Contains(res, bad) {
			t.Errorf("output contains %s", bad)
		}
	}
	// The report made wxtoken fetch demo-mini again.
	_, key, _ := strings.Cut(out.String(), "KEY=")
	req, _ := http.NewRequest("GET", base+"/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Fields(key)[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Credentials []struct {
			ID      string `json:"id"`
			Fetches int    `json:"fetches_today"`
		} `json:"credentials"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	fetches := -1
	for _, c := range list.Credentials {
		if c.ID == "demo-mini" {
			fetches = c.Fetches
		}
	}
	if fetches != 1 {
		t.Errorf("demo-mini fetched %d times; want 1: the reported token still works, so it is kept", fetches)
	}
	if !strings.Contains(res, `"result":"live"`) {
		t.Errorf("the report's answer does not say the token was found live")
	}
	// The dashboard it names opens with the admin key it prints.
	_, dash, _ := strings.Cut(out.String(), "Dashboard: ")
	_, keyText, _ := strings.Cut(dash, "admin key ")
	if fields := strings.Fields(dash + " "); len(fields) == 0 || fields[0] != base+"/ui/" || keyText == "" {
		t.Errorf("the demo does not name the dashboard at %s/ui/ and its key: %q", base, dash)
	} else {
		adminKey := strings.TrimSuffix(strings.Fields(keyText)[0], ")")
		resp, err := http.Post(base+"/ui/login", "application/json", strings.NewReader(`{"key":"`+adminKey+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("signing in to the dashboard with the printed admin key %q: %d", adminKey, resp.StatusCode)
		}
	}
	if t.Failed() {
		t.Logf("commands:\n%s\n--- output:\n%s", strings.Join(script, "\n"), res)
	}
}
