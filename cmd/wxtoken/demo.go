package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/wxtest"
)

// demoCmd runs a fake WeChat and a server with sample credentials in a
// temporary data directory, prints what to try, and runs until ctx ends.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8750", "address of the wxtoken API")
	wechatListen := fs.String("wechat-listen", "127.0.0.1:8751", "address of the WeChat-compatible facade, for SDKs")
	lifetime := fs.Duration("lifetime", 2*time.Minute, "lifetime of the fake's tokens (short, to watch refreshes)")
	overlap := fs.Duration("overlap", 30*time.Second, "how long the fake keeps a replaced token valid")
	summary := "Runs a server with sample credentials against a built-in fake WeChat, in a temporary\ndata directory, and prints commands to try. Ctrl-C stops it."
	if help, err := parseFlags(fs, summary, args, stdout, stderr); help || err != nil {
		return err
	}

	fake := wxtest.New(wxtest.Config{Lifetime: *lifetime, Overlap: *overlap, StableRenewBefore: *lifetime / 10})
	apps := map[string]string{"wxd000000000000001": "demo-oa-secret", "wxd000000000000002": "demo-mini-secret"}
	for id, secret := range apps {
		fake.AddApp(id, secret)
	}
	fake.AddCorp("wwd000000000000001", "demo-wecom-secret")
	fake.AddSuite(demoSuite)
	fln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fakeDone := make(chan error, 1)
	fctx, stopFake := context.WithCancel(context.Background())
	go func() { fakeDone <- serveUntil(fctx, fln, fake) }()
	defer func() { stopFake(); <-fakeDone }()

	dir, err := os.MkdirTemp("", "wxtoken-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key := make([]byte, 16)
	rand.Read(key)
	clientKey := hex.EncodeToString(key)
	rand.Read(key)
	adminKey := hex.EncodeToString(key)
	// The demo's store is sealed at rest, as a real one should be, under
	// a key made for it (unless WXTOKEN_MASTER_KEY gives one).
	var masterKeyFile string
	if os.Getenv("WXTOKEN_MASTER_KEY") == "" {
		mk := make([]byte, 32)
		rand.Read(mk)
		masterKeyFile = filepath.Join(dir, "master.key")
		if err := os.WriteFile(masterKeyFile, []byte(base64.StdEncoding.EncodeToString(mk)+"\n"), 0o600); err != nil {
			return err
		}
	}

	upstream := "http://" + fln.Addr().String()
	cfg := &config.Config{
		Listen:       *listen,
		WeChatListen: *wechatListen,
		DataDir:      filepath.Join(dir, "data"),
		Store:        config.Store{MasterKeyFile: masterKeyFile},
		Upstream:     config.Upstream{API: upstream, WeCom: upstream, Timeout: 5 * time.Second},
		// A report forces a refresh at most once a second here (30 s by
		// default), so the printed report works right after start.
		Refresh: config.Refresh{Overlap: *overlap, MinForceInterval: time.Second},
		Credentials: []config.Credential{
			{ID: "demo-oa", Kind: kind.MP.Name, AppID: "wxd000000000000001", Secret: apps["wxd000000000000001"], Mode: config.ModeStable,
				Tickets: []string{kind.JSAPI.Type}},
			{ID: "demo-mini", Kind: kind.MP.Name, AppID: "wxd000000000000002", Secret: apps["wxd000000000000002"], Mode: config.ModeClassic},
			{ID: "demo-wecom", Kind: kind.WeCom.Name, CorpID: "wwd000000000000001", Secret: "demo-wecom-secret"},
			{ID: "demo-suite", Kind: kind.Suite.Name, SuiteID: demoSuite.SuiteID, Secret: demoSuite.Secret,
				Token: demoSuite.Token, EncodingAESKey: demoSuite.EncodingAESKey, Tickets: []string{kind.CorpJSAPI.Type}},
		},
		Clients: []config.Client{{Name: "demo", Key: clientKey, Allow: []string{"*"}}},
		Admins:  []config.Admin{{Name: "demo-admin", Key: adminKey, Role: config.RoleAdmin}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := &Main{Config: cfg, Logger: newLogger(cfg.Log, stderr)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	defer m.Close()

	base := "http://" + m.Addr()
	// The fake plays WeCom for the suite: a suite_ticket now and every
	// ten minutes, as WeCom pushes them, and one corp installing it.
	fake.SetPushTarget(demoSuite.SuiteID, base+"/callback/suite/demo-suite", nil)
	if _, err := fake.PushSuiteTicket(ctx, demoSuite.SuiteID); err != nil {
		return fmt.Errorf("demo: push the suite's ticket: %w", err)
	}
	pctx, stopPushes := context.WithCancel(ctx)
	pushesDone := make(chan struct{})
	go func() {
		defer close(pushesDone)
		for t := time.NewTicker(10 * time.Minute); ; {
			select {
			case <-pctx.Done():
				t.Stop()
				return
			case <-t.C:
				fake.PushSuiteTicket(pctx, demoSuite.SuiteID)
			}
		}
	}()
	defer func() { stopPushes(); <-pushesDone }()
	// The install's code is exchanged with the suite's token, fetched
	// once the ticket arrived (WeCom would push the install again).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := m.tokens.Token("demo-suite"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if _, err := fake.CreateAuth(ctx, demoSuite.SuiteID, demoCorp); err != nil {
		return fmt.Errorf("demo: install the suite in a corp: %w", err)
	}
	// The commands are printed to be pasted into a shell as they stand:
	// the real key and ids, a token fetched into a variable rather than a
	// placeholder, and no comments among them (zsh takes a pasted # line
	// for a command).
	fmt.Fprintf(stdout, `
wxtoken demo: a server on %[1]s against a fake WeChat on %[2]s
tokens live %[3]s here, so refreshes show in the log; data in %[4]s (removed on exit),
sealed at rest under a key made for the demo

Dashboard: %[1]s/ui/ (sign in with the admin key %[7]s)

Try, in another shell:

  KEY=%[5]s
  curl -s -H "Authorization: Bearer $KEY" %[1]s/v1/tokens
  curl -s -H "Authorization: Bearer $KEY" %[1]s/v1/tokens/demo-oa

Get a token and use it upstream, as a business server does; then report it as failed, as after a
40001 from WeChat: wxtoken asks WeChat whether it still works and, as it does, answers the same
token with "result":"live" (a token WeChat had ended would be replaced at once: "refreshed").

  TOKEN=$(curl -s -H "Authorization: Bearer $KEY" %[1]s/v1/tokens/demo-mini | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  curl -s -w '\n' "%[2]s/cgi-bin/getcallbackip?access_token=$TOKEN"
  curl -s -H "Authorization: Bearer $KEY" -d "{\"access_token\":\"$TOKEN\"}" %[1]s/v1/tokens/demo-mini/invalidate
  curl -s %[1]s/readyz

Sign a web page for the JS-SDK's wx.config with the account's jsapi ticket, which wxtoken keeps
fresh like the token (the ticket itself: %[1]s/v1/tokens/demo-oa/tickets/jsapi):

  curl -s -H "Authorization: Bearer $KEY" -d '{"url":"https://shop.example.com/pay?order=42"}' %[1]s/v1/tokens/demo-oa/jssdk

A WeCom service provider's suite: WeCom pushed its suite_ticket, a corp installed it, and the
corp's token (from get_corp_token with the permanent code wxtoken stored) is served in the
suite's namespace, with the corp's jsapi ticket:

  curl -s -H "Authorization: Bearer $KEY" %[1]s/v1/tokens/demo-suite/%[8]s
  curl -s -H "Authorization: Bearer $KEY" %[1]s/v1/tokens/demo-suite/%[8]s/tickets/jsapi

A WeChat SDK needs no code change: point its base URL at %[6]s instead of
https://api.weixin.qq.com and give it the key as its AppSecret. It gets the token wxtoken holds, and
its API calls are forwarded to WeChat:

  curl -s -w '\n' "%[6]s/cgi-bin/token?grant_type=client_credential&appid=wxd000000000000002&secret=$KEY"

Ctrl-C to stop.
`, base, upstream, *lifetime, dir, clientKey, "http://"+m.WeChatAddr(), adminKey, demoCorp)
	return m.Wait(ctx)
}

// The demo's WeCom suite, and the corp that installs it.
var demoSuite = wxtest.Suite{SuiteID: "wwd0000000000005e1", Secret: "demo-suite-secret", Token: "demo-suite-token",
	EncodingAESKey: "d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m"}

const demoCorp = "wwd00000000000c0a1"
