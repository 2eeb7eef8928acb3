package deploy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A proc is a started process.
type proc struct {
	cmd    *exec.Cmd
	out    lockedBuffer
	exited chan struct{} // closed when it has ended; err is then set
	err    error
}

// start runs the binary with args and env; it is killed and waited for
// when the test ends, if it has not ended before.
func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// await waits for pattern's first group in the process's output, or fails
// once it ends or a minute has passed (a bound on a broken run, not a
// timing).
func (p *proc) await(t *testing.T, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.exited:
			t.Fatalf("process ended (%v) before printing %s:\n%s", p.err, pattern, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute:\n%s", pattern, p.out.String())
		}
	}
}

// TestOfficialAccountExampleServes runs the static binary on
// examples/official-account.yaml as it stands, but for its addresses
// (a free port, a temporary data_dir, the fake WeChat as upstream), with
// the secrets in the environment: the health check passes once it is
// ready, the client it configures gets the account's token, and SIGTERM
// stops it cleanly.
func TestOfficialAccountExampleServes(t *testing.T) {
	bin := staticBinary(t)
	const appid, secret, key = "wx1234567890abcdef", "example-app-secret", "example-client-key-0123456789"
	data, err := os.ReadFile("examples/official-account.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH")}

	fake := start(t, bin, env, "fakewx", "--listen", "127.0.0.1:0", "--app", appid+":"+secret)
	upstream := fake.await(t, `listening on (http://\S+)`)

	cfg := string(data)
	for old, repl := range map[string]string{
		"listen: 127.0.0.1:8750": "listen: 127.0.0.1:0",
		"data_dir: ./data":       "data_dir: " + filepath.Join(t.TempDir(), "data"),
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("examples/official-account.yaml has no %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	cfg += "\nupstream:\n  api: " + upstream + "\n"
	cfgPath := filepath.Join(t.TempDir(), "wxtoken.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "OA_SECRET="+secret, "SHOP_BACKEND_KEY="+key)
	srv := start(t, bin, env, "serve", "--config", cfgPath)
	addr := srv.await(t, `msg=listening addr=(\S+)`)

	// Ready once the token is fetched; the health check says so by its
	// exit status alone.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if exec.Command(bin, "healthcheck", "--url", "http://"+addr+"/readyz").Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed:\n%s", srv.out.String())
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/tokens/shop-oa", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("GET /v1/tokens/shop-oa: %s, %v, %+v", resp.Status, err, tok)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	<-srv.exited
	if srv.err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", srv.err, srv.out.String())
	}
	if o := srv.out.String(); strings.Contains(o, secret) || strings.Contains(o, key) {
		t.Errorf("a secret reached the log:\n%s", o)
	}
}
