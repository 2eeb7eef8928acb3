package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
)

// syncBuffer is a bytes.Buffer safe to write and read concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFakewxCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"fakewx", "--listen", "127.0.0.1:0", "--app", "wx1:s1"}, &out, io.Discard)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("fakewx did not report its address")
		}
		if _, rest, ok := strings.Cut(out.String(), "listening on "); ok {
			addr = strings.Fields(rest)[0]
		}
	}
	c := &wechat.Client{API: addr}
	if _, err := c.ClassicToken(t.Context(), "wx1", "s1"); err != nil {
		t.Fatalf("token from fakewx: %v", err)
	}
	if _, err := c.ClassicToken(t.Context(), "wx1", "wrong"); wechat.ErrCode(err) != wechat.CodeInvalidSecret {
		t.Fatalf("wrong secret: %v, want 40125", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("fakewx exit: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"serve", "--config", "/does/not/exist.yaml"}, {"fakewx", "--component", "bad"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"help"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "serve") {
		t.Fatalf("help = %v, %q", err, out.String())
	}
}

// TestCommandHelp: -h and --help print a command's usage to stdout and
// succeed (exit status 0), without running the command.
func TestCommandHelp(t *testing.T) {
	for _, tt := range []struct{ cmd, flag string }{
		{"serve", "-config"}, {"demo", "-lifetime"}, {"fakewx", "-daily-limit"}, {"rekey", "-config"}, {"keygen", "master key"},
	} {
		for _, h := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{tt.cmd, h}, &stdout, &stderr)
			if err != nil {
				t.Errorf("wxtoken %s %s: %v, want success", tt.cmd, h, err)
			}
			if out := stdout.String(); !strings.Contains(out, "usage: wxtoken "+tt.cmd) || !strings.Contains(out, tt.flag) {
				t.Errorf("wxtoken %s %s printed %q to stdout; want its usage with %s", tt.cmd, h, out, tt.flag)
			}
		}
	}
	// A wrong flag is still an error, with the usage on stderr.
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--nope"}, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "usage: wxtoken serve") {
		t.Errorf("wxtoken serve --nope: %v, stderr %q; want an error and the usage on stderr", err, stderr.String())
	}
}

// TestVersion: version, --version and -version print the same line, with
// the Go release the binary was built with.
func TestVersion(t *testing.T) {
	var first string
	for _, arg := range []string{"version", "--version", "-version"} {
		var stdout bytes.Buffer
		if err := run(t.Context(), []string{arg}, &stdout, io.Discard); err != nil {
			t.Fatalf("wxtoken %s: %v", arg, err)
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "wxtoken ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("wxtoken %s = %q; want wxtoken's version and %s", arg, out, runtime.Version())
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("wxtoken %s = %q, but version = %q", arg, out, first)
		}
	}
}

// TestBinaryVersionAndHelp builds the binary as a user would and checks
// that its version output carries what Go embedded in it (module version,
// VCS revision, modified flag), and that help exits 0.
func TestBinaryVersionAndHelp(t *testing.T) {
	// Go's default, -buildvcs=auto, whatever GOFLAGS says: stamp the VCS
	// state when built in a checkout.
	bin := filepath.Join(t.TempDir(), "wxtoken")
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["vcs.revision"] == "" {
		t.Skip("the binary carries no VCS information (built outside a git checkout)")
	}
	for _, arg := range []string{"version", "--version", "-version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("wxtoken %s: %v", arg, err)
		}
		got := string(out)
		want := []string{settings["vcs.revision"], info.GoVersion}
		if v := info.Main.Version; v != "" && v != "(devel)" {
			want = append(want, v)
		}
		if settings["vcs.modified"] == "true" {
			want = append(want, "modified")
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("wxtoken %s = %q; want it to contain %q", arg, got, w)
			}
		}
		if settings["vcs.modified"] != "true" && strings.Contains(got, "modified") {
			t.Errorf("wxtoken %s = %q; says modified, but the build was not", arg, got)
		}
	}
	for _, cmd := range []string{"serve", "demo", "fakewx"} {
		if out, err := exec.Command(bin, cmd, "--help").CombinedOutput(); err != nil {
			t.Errorf("wxtoken %s --help: %v\n%s", cmd, err, out)
		}
	}
}

// TestDescribeBuild: what Go embeds is shown, and a version set at build
// time wins over the module version.
func TestDescribeBuild(t *testing.T) {
	const rev = "2ff6cf65a7b74d1c7c417db4b3aa04eb63126b45"
	stamped := func(modVersion, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: modVersion}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-03T09:32:51Z"}, {Key: "vcs.modified", Value: modified}}}
	}
	tests := []struct {
		name, set string
		bi        *debug.BuildInfo
		want      []string
		not       []string
	}{
		{"go install", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			[]string{"wxtoken v1.4.0 ", "go1.26.8"}, []string{"revision", "modified", "dev"}},
		{"clean checkout", "", stamped("v0.0.0-20261203093251-2ff6cf65a7b7", "false"),
			[]string{"wxtoken v0.0.0-20261203093251-2ff6cf65a7b7 ", "revision " + rev, "2026-12-03T09:32:51Z", "go1.26.8"}, []string{"modified"}},
		{"modified checkout", "", stamped("v0.0.0-20261203093251-2ff6cf65a7b7+dirty", "true"),
			[]string{"revision " + rev, "modified"}, nil},
		{"ldflags", "1.5.0", stamped("(devel)", "false"), []string{"wxtoken 1.5.0 ", "revision " + rev}, []string{"devel"}},
		{"no build info", "", nil, []string{"wxtoken dev ", runtime.Version()}, nil},
	}
	for _, tt := range tests {
		got := describeBuild(tt.set, tt.bi)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q; want it to contain %q", tt.name, got, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q; want no %q", tt.name, got, n)
			}
		}
	}
}

// startFakewx runs "wxtoken fakewx" with args and returns its URL.
func startFakewx(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"fakewx", "--listen", "127.0.0.1:0"}, args...), &out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fakewx exit: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, rest, ok := strings.Cut(out.String(), "listening on "); ok {
			return strings.Fields(rest)[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("fakewx did not report its address")
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("fakewx %q ended: %v", args, err)
		default:
		}
	}
}

// TestFakewxStableRenew: with short-lived tokens, a stable_token call
// answers the current token until the renewal window before expiry (by
// default the same share of the lifetime as WeChat's 5 minutes of 2
// hours), rather than a new token every time.
func TestFakewxStableRenew(t *testing.T) {
	app := "wx0000000000000001"
	for _, args := range [][]string{
		{"--lifetime", "3m"},
		{"--lifetime", "3m", "--stable-renew", "10s"},
	} {
		c := &wechat.Client{API: startFakewx(t, append(args, "--app", app+":s1")...)}
		a, err := c.StableToken(t.Context(), app, "s1", false)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.StableToken(t.Context(), app, "s1", false)
		if err != nil {
			t.Fatal(err)
		}
		if a.Value != b.Value {
			t.Errorf("fakewx %q: two stable_token calls a moment apart got two tokens; want the current one again", args)
		}
		if f, err := c.StableToken(t.Context(), app, "s1", true); err != nil || f.Value == a.Value {
			t.Errorf("fakewx %q: force_refresh got %v, %v; want a new token", args, err, f.Value == a.Value)
		}
	}
	for _, args := range [][]string{{"--lifetime", "3m", "--stable-renew", "3m"}, {"--stable-renew", "-1s"}, {"--lifetime", "0s"}} {
		if err := run(t.Context(), append([]string{"fakewx", "--listen", "127.0.0.1:0"}, args...), io.Discard, io.Discard); err == nil {
			t.Errorf("fakewx %q: no error; want the renewal window refused", args)
		}
	}
}

// TestFakewxSuite: fakewx plays WeCom for a suite: it pushes the
// suite_ticket to --suite-push-to, and the corp given by --install
// installs the suite, so a server run against it serves the corp's token.
func TestFakewxSuite(t *testing.T) {
	const suiteID, corp = "ww5e17e000000000a1", "ww00000000000000b2"
	const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	// fakewx must know where to push before the server, which must
	// know fakewx, is started: pushes wait here until it is.
	var target atomic.Value
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for deadline := time.Now().Add(10 * time.Second); target.Load() == nil; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				http.Error(w, "no server", http.StatusBadGateway)
				return
			}
		}
		u, _ := url.Parse("http://" + target.Load().(string))
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(relay.Close)
	up := startFakewx(t, "--suite", suiteID+":suite-secret:suite-token:"+aesKey, "--install", suiteID+":"+corp,
		"--suite-push-to", relay.URL+"/callback/suite/{suite_id}")
	addr := runYAML(t, `listen: 127.0.0.1:0
data_dir: `+t.TempDir()+`
upstream: {api: `+up+`, wecom: `+up+`}
credentials:
  - {kind: suite, suite_id: `+suiteID+`, secret: suite-secret, token: suite-token, encoding_aes_key: `+aesKey+`}
clients:
  - {name: e2e, key: `+clientKey+`, allow: ["`+suiteID+`/*"]}
`).Addr()
	target.Store(addr)
	tr := getToken(t, addr, suiteID+"/"+corp)
	c := &wechat.Client{WeCom: up}
	if _, err := c.WeComAPIDomainIP(t.Context(), tr.AccessToken); err != nil {
		t.Fatalf("the installed corp's token, used at fakewx: %v", err)
	}
	if err := run(t.Context(), []string{"fakewx", "--listen", "127.0.0.1:0", "--install", suiteID + ":" + corp}, io.Discard, io.Discard); err == nil {
		t.Error("fakewx --install of a suite not given: no error")
	}
}
