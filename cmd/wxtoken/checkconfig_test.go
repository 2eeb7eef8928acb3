package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/wxtoken/wxtoken/config"
)

// exampleValue is a value for the environment variable name that has the
// shape such a variable needs: a SHA-256 in hex for *_SHA256, else 43
// characters of unpadded base64, which passes for an AppSecret, a client
// key and an EncodingAESKey alike. Each name gets its own, as two clients
// may not share a key.
func exampleValue(name string) string {
	sum := sha256.Sum256([]byte("example " + name))
	if strings.HasSuffix(name, "_SHA256") {
		return hex.EncodeToString(sum[:])
	}
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// TestCheckConfigExamples: every example under deploy/examples passes
// check-config once the variables it names are set, and says how many
// credentials and clients it has, without printing a secret.
func TestCheckConfigExamples(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("deploy/examples has %d configurations, want one per scenario (4)", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			refs, err := config.EnvRefs(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) == 0 {
				t.Error("no ${NAME} reference: the example's secrets should come from the environment")
			}
			var secrets []string
			for _, r := range refs {
				v := exampleValue(r.Name)
				t.Setenv(r.Name, v)
				secrets = append(secrets, v)
			}
			var counts struct{ Credentials, Clients []yaml.Node }
			if err := yaml.Unmarshal(data, &counts); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if err := run(t.Context(), []string{"check-config", "--config", f}, &stdout, &stderr); err != nil {
				t.Fatalf("check-config: %v\n%s", err, stderr.String())
			}
			want := fmt.Sprintf("ok: %d credentials, %d clients\n", len(counts.Credentials), len(counts.Clients))
			if stdout.String() != want {
				t.Errorf("check-config printed %q, want %q", stdout.String(), want)
			}
			for _, s := range secrets {
				if strings.Contains(stdout.String()+stderr.String(), s) {
					t.Errorf("check-config printed the value of a variable: %q", stdout.String()+stderr.String())
				}
			}
			// Each unset variable is named, whichever it is.
			os.Unsetenv(refs[len(refs)-1].Name)
			stderr.Reset()
			if err := run(t.Context(), []string{"check-config", "--config", f}, io.Discard, &stderr); err == nil ||
				!strings.Contains(stderr.String(), "environment variable "+refs[len(refs)-1].Name+" is not set") {
				t.Errorf("check-config without %s: %v, %q; want it named", refs[len(refs)-1].Name, err, stderr.String())
			}
		})
	}
}

// TestCheckConfigBroken: a file with several mistakes fails, with every
// problem on its own line, each variable that is not set named, no
// secret printed, and nothing created: no store is opened.
func TestCheckConfigBroken(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	const secret = "s3cret-value-that-must-not-leak"
	const key = "short-key"
	t.Setenv("BROKEN_SECRET", secret)
	t.Setenv("BROKEN_KEY", key)
	path := filepath.Join(dir, "wxtoken.yaml")
	writeCheckedFile(t, path, `listen: 127.0.0.1:8750
data_dir: `+dataDir+`
credentials:
  - id: oa
    kind: mp
    appid: wx1234567890abcdef
    secret: ${BROKEN_SECRET}
  - id: hr
    kind: wecom
    secret: ${HR_SECRET_NOT_SET}
  - id: shop
    kind: mpp
    appid: wxfedcba0987654321
    secret: ${BROKEN_SECRET}
clients:
  - name: shop-backend
    key: ${BROKEN_KEY}
    allow: [oa, nope]
  - name: other
    key: ${OTHER_KEY_NOT_SET}
    allow: [oa]
`)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"check-config", "--config", path}, &stdout, &stderr)
	if err == nil {
		t.Fatalf("check-config succeeded on a broken file; stdout %q", stdout.String())
	}
	want := []string{
		"line 10: environment variable HR_SECRET_NOT_SET is not set",
		"line 20: environment variable OTHER_KEY_NOT_SET is not set",
		"credentials[1] (hr).secret: required",
		"credentials[1] (hr).corpid: required for kind wecom",
		`credentials[2] (shop).kind: want`,
		"clients[0] (shop-backend).key: at least 16 characters",
		`clients[0] (shop-backend).allow: unknown credential "nope"`,
		"clients[1] (other).key: required",
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("no line starting %q in:\n%s", w, stderr.String())
		}
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%d problems", len(lines))) {
		t.Errorf("error %q; want it to count the %d problems printed", err, len(lines))
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout %q; want nothing on failure", stdout.String())
	}
	if out := stderr.String() + err.Error(); strings.Contains(out, secret) || strings.Contains(out, key) {
		t.Errorf("a secret was printed:\n%s", out)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data_dir %s: %v; check-config must not create or open the store", dataDir, err)
	}

	// A message that would quote a value from the environment shows the
	// variable's name instead.
	t.Setenv("BROKEN_APPID", "wx-secret-looking-appid")
	writeCheckedFile(t, path, "credentials:\n  - kind: mp\n    appid: ${BROKEN_APPID}\n    secret: x\n")
	stderr.Reset()
	if err := run(t.Context(), []string{"check-config", "--config", path}, io.Discard, &stderr); err == nil ||
		!strings.Contains(stderr.String(), "${BROKEN_APPID}") || strings.Contains(stderr.String(), "wx-secret-looking-appid") {
		t.Errorf("check-config: %v, %q; want the appid shown as ${BROKEN_APPID}", err, stderr.String())
	}

	// A short value is no secret, and shown: hiding every "0" or "true"
	// would garble the messages.
	t.Setenv("BROKEN_PORT", "99999")
	writeCheckedFile(t, path, "listen: 127.0.0.1:${BROKEN_PORT}\n")
	stderr.Reset()
	if err := run(t.Context(), []string{"check-config", "--config", path}, io.Discard, &stderr); err == nil || !strings.Contains(stderr.String(), "port 99999 out of range") {
		t.Errorf("check-config: %v, %q; want the port shown", err, stderr.String())
	}

	// One problem; a file YAML cannot read; a missing file.
	writeCheckedFile(t, path, "listen: nowhere\n")
	if err := run(t.Context(), []string{"check-config", "--config", path}, io.Discard, io.Discard); err == nil || !strings.HasSuffix(err.Error(), ": 1 problem") {
		t.Errorf("one problem: %v", err)
	}
	writeCheckedFile(t, path, "credentials: [\n")
	stderr.Reset()
	if err := run(t.Context(), []string{"check-config", "--config", path}, io.Discard, &stderr); err == nil || !strings.Contains(stderr.String(), "yaml:") {
		t.Errorf("broken YAML: %v, %q", err, stderr.String())
	}
	if err := run(t.Context(), []string{"check-config", "--config", filepath.Join(dir, "none.yaml")}, io.Discard, io.Discard); err == nil {
		t.Error("missing file: no error")
	}
}

func writeCheckedFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestHealthcheck: exit 0 on 200 only; any other status, a server that is
// not there, or a bad URL fails.
func TestHealthcheck(t *testing.T) {
	var status atomic.Int64
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	check := func(url string) error {
		return run(t.Context(), []string{"healthcheck", "--url", url, "--timeout", "10s"}, io.Discard, io.Discard)
	}
	if err := check(srv.URL + "/readyz"); err != nil {
		t.Errorf("200: %v, want success", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := check(srv.URL + "/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v, want an error naming the status", err)
	}
	if err := check(srv.URL + "/elsewhere"); err == nil {
		t.Error("404: no error")
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if err := check(closed.URL + "/readyz"); err == nil {
		t.Error("no server: no error")
	}
	for _, bad := range [][]string{{"--url", "127.0.0.1:8750/readyz"}, {"--url", "ftp://x/readyz"}, {"--timeout", "0s"}} {
		if err := run(t.Context(), append([]string{"healthcheck"}, bad...), io.Discard, io.Discard); err == nil {
			t.Errorf("healthcheck %q: no error", bad)
		}
	}
	for _, cmd := range []string{"check-config", "healthcheck"} {
		var stdout bytes.Buffer
		if err := run(t.Context(), []string{cmd, "--help"}, &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "usage: wxtoken "+cmd) {
			t.Errorf("wxtoken %s --help: %v, %q", cmd, err, stdout.String())
		}
	}
}
