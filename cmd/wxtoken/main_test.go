package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

const clientKey = "e2e-client-key-0123456789"

// app1 and app2 are the fake's two apps. The tests configure them as
// credentials wx1 (classic mode) and wx2 (stable mode).
const app1, app2 = "wx0000000000000001", "wx0000000000000002"

// upstream runs the fake WeChat on a real listener with app1 and app2.
func upstream(t *testing.T, fc wxtest.Config) (*wxtest.Fake, string) {
	t.Helper()
	fake := wxtest.New(fc)
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

func configYAML(dir, listen, up string, overlap time.Duration) string {
	return fmt.Sprintf(`listen: %s
data_dir: %s
upstream: {api: %s, wecom: %s, timeout: 2s}
refresh: {overlap: %s, min_force_interval: 1s}
credentials:
  - id: wx1
    kind: mp
    appid: %s
    secret: ${WX1_SECRET}
    mode: classic
  - id: wx2
    kind: mp
    appid: %s
    secret: ${WX2_SECRET}
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, listen, dir, up, up, overlap, app1, app2, clientKey)
}

func startMain(t *testing.T, dir, up string, overlap time.Duration) *Main {
	t.Helper()
	env := map[string]string{"WX1_SECRET": "secret1", "WX2_SECRET": "secret2"}
	cfg, err := config.Parse([]byte(configYAML(dir, "127.0.0.1:0", up, overlap)), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// runYAML runs wxtoken on the configuration yaml, which names no
// environment variable, until the test ends.
func runYAML(t *testing.T, yaml string) *Main {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// keyCall makes one API request with the client key key and returns the
// answer's status and body.
func keyCall(t *testing.T, addr, method, path, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type tokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Result      string `json:"result"` // a report's: replaced, live or refreshed
}

// getToken asks addr for id's token, retrying while it is not ready.
func getToken(t *testing.T, addr, id string) tokenReply {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/tokens/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+clientKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var tr tokenReply
			json.NewDecoder(resp.Body).Decode(&tr)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return tr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no token: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartServesStored: a clean stop and start serves the same tokens
// with no fetch.
func TestRestartServesStored(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	dir := t.TempDir()
	m := startMain(t, dir, up, 0)
	a1, a2 := getToken(t, m.Addr(), "wx1"), getToken(t, m.Addr(), "wx2")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = startMain(t, dir, up, 0)
	defer m.Close()
	if b1, b2 := getToken(t, m.Addr(), "wx1"), getToken(t, m.Addr(), "wx2"); b1.AccessToken != a1.AccessToken || b2.AccessToken != a2.AccessToken {
		t.Fatal("tokens changed across a restart")
	}
	if c1, c2 := fake.Stats(app1).ClassicCalls, fake.Stats(app2).StableCalls; c1 != 1 || c2 != 1 {
		t.Fatalf("fetches = %d classic, %d stable; want 1 each over two starts", c1, c2)
	}
}

// TestKill9ServesStored runs the real binary, kills it with SIGKILL and
// starts it again: the stored tokens are served with no fetch.
func TestKill9ServesStored(t *testing.T) {
	bin := buildBinary(t)
	fake, up := upstream(t, wxtest.Config{})
	dir := t.TempDir()
	path := filepath.Join(dir, "wxtoken.yaml")
	os.WriteFile(path, []byte(configYAML(filepath.Join(dir, "data"), "127.0.0.1:0", up, 0)), 0o600)
	t.Setenv("WX1_SECRET", "secret1")
	t.Setenv("WX2_SECRET", "secret2")

	cmd, addr := startBinary(t, bin, path)
	a := getToken(t, addr, "wx1")
	cmd.Process.Kill() // SIGKILL: no shutdown code runs
	cmd.Wait()

	cmd, addr = startBinary(t, bin, path)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if b := getToken(t, addr, "wx1"); b.AccessToken != a.AccessToken {
		t.Fatal("token changed across kill -9")
	}
	if calls := fake.Stats(app1).ClassicCalls; calls != 1 {
		t.Fatalf("fetches = %d over a kill -9 and restart, want 1", calls)
	}
}

// TestClientsNeverHoldDeadTokens: business servers that cache each token
// for the expires_in they are given, and use it upstream until then, see
// no 40001/42001 across many refreshes, over real HTTP and real time.
func TestClientsNeverHoldDeadTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 30 s of real time")
	}
	const lifetime, overlap = 10 * time.Second, 4 * time.Second
	fake, up := upstream(t, wxtest.Config{Lifetime: lifetime, Overlap: overlap, StableRenewBefore: 2 * time.Second})
	m := startMain(t, t.TempDir(), up, overlap)
	defer m.Close()
	wc := &wechat.Client{API: up}

	var wg sync.WaitGroup
	var mu sync.Mutex
	uses := 0
	end := time.Now().Add(30 * time.Second)
	for i := range 8 {
		id := []string{"wx1", "wx2"}[i%2]
		wg.Go(func() {
			var tok string
			var until time.Time
			for time.Now().Before(end) {
				if time.Now().After(until) {
					tr := getToken(t, m.Addr(), id)
					tok, until = tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second)
				}
				if _, err := wc.CallbackIP(t.Context(), tok); err != nil {
					t.Errorf("%s: cached token failed upstream: %v", id, err)
					return
				}
				mu.Lock()
				uses++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	s1, s2 := fake.Stats(app1), fake.Stats(app2)
	if s1.DeadUses+s2.DeadUses != 0 {
		t.Fatalf("dead uses = %d + %d, want 0", s1.DeadUses, s2.DeadUses)
	}
	// 30 s of 10 s tokens refreshed at ~8 s: at least 3 classic refreshes.
	if s1.Issued < 4 || s2.Issued < 3 {
		t.Fatalf("issued %d classic and %d stable tokens in 30 s; the test did not cross refreshes", s1.Issued, s2.Issued)
	}
	t.Logf("%d uses; classic: %d tokens, stable: %d tokens, 0 dead", uses, s1.Issued, s2.Issued)
}

// TestSecondMainOnDataDirRefused: a second instance on a data directory
// in use fails with the store's error. Before, the failed open left a nil
// *bolt.Store in Main's store interface and cleanup called Close on it:
// a nil pointer panic instead of the message.
func TestSecondMainOnDataDirRefused(t *testing.T) {
	_, up := upstream(t, wxtest.Config{})
	dir := t.TempDir()
	first := startMain(t, dir, up, 0)
	defer first.Close()
	cfg := *first.Config
	second := &Main{Config: &cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := second.Run(t.Context()); !errors.Is(err, bolt.ErrInUse) {
		t.Fatalf("second Run on the same data directory: %v, want bolt.ErrInUse", err)
	}
}

// TestServeRefusesDamagedStore: "wxtoken serve" on a data directory whose
// file is damaged exits with an error naming the file. Before, a file cut
// short killed the process with SIGBUS, and garbage in its pages panicked:
// a crash dump instead of a message.
func TestServeRefusesDamagedStore(t *testing.T) {
	bin := buildBinary(t)
	_, up := upstream(t, wxtest.Config{})
	healthy := filledStoreFile(t)
	tests := []struct {
		name   string
		damage func(data []byte) []byte
	}{
		{"cut inside the freelist page", func(data []byte) []byte {
			// Meta page 0 or 1, whichever has the higher transaction id,
			// is in use; 16 bytes of page header, then its fields. The
			// freelist page lies past the cut but inside bbolt's map,
			// whose size is a power of two: reading it is a SIGBUS.
			ne, p := binary.NativeEndian, 0
			if ne.Uint64(data[4096+16+48:]) > ne.Uint64(data[16+48:]) {
				p = 1
			}
			off := int(ne.Uint64(data[p*4096+16+32:])) * 4096
			return data[:off-1]
		}},
		{"garbage after the meta pages", func(data []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := 2 * 4096; i < len(data); i++ {
				data[i] = byte(r.Uint32())
			}
			return data
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			os.Mkdir(data, 0o700)
			file := filepath.Join(data, bolt.FileName)
			if err := os.WriteFile(file, tt.damage(bytes.Clone(healthy)), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "wxtoken.yaml")
			os.WriteFile(path, []byte(configYAML(data, "127.0.0.1:0", up, 0)), 0o600)
			cmd := exec.Command(bin, "serve", "--config", path)
			cmd.Env = append(os.Environ(), "WX1_SECRET=secret1", "WX2_SECRET=secret2")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("serve on a damaged store did not exit; it said:\n%s", stderr.String())
			}
			out := stderr.String()
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out, "wxtoken: bolt: data file is damaged: "+file) {
				t.Errorf("exit %d (%v), stderr:\n%s\nwant exit 1 and an error naming %s", code, err, out, file)
			}
			for _, crash := range []string{"panic", "fatal error", "SIGBUS", "goroutine "} {
				if strings.Contains(out, crash) {
					t.Fatalf("serve crashed:\n%s", out)
				}
			}
		})
	}
}

// filledStoreFile returns the bytes of a store file holding 200
// authorizer-like records: several pages of each kind.
func filledStoreFile(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		v := fmt.Sprintf(`{"token":"%d_abcdefghijklmnopqrstuvwxyz","state":"refreshtoken@@@%d"}`, i, i)
		if _, err := s.Put(t.Context(), fmt.Sprintf("token/wxauth%04d", i), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
