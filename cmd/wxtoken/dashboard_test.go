package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxtoken/wxtoken/wxtest"
)

// chromium finds a Chromium to drive: $WXTOKEN_CHROMIUM, or one on the
// PATH. Without one the browser test is skipped, except in CI, which
// installs Debian's chromium package (.ci/run).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WXTOKEN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found: CI needs Debian's chromium package (.ci/run installs it)")
	}
	t.Skip("no Chromium found (install Debian's chromium package, or set WXTOKEN_CHROMIUM): the dashboard's browser test needs one")
	return ""
}

// browser starts a headless Chromium with a fresh profile that reaches
// nothing but the pages it is sent to, and returns a tab's context. The
// browser is closed when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	// The profile is removed by hand: Chromium's helper processes may
	// still write to it for a moment after the browser has exited, which
	// t.TempDir's cleanup would report as a failure.
	profile, err := os.MkdirTemp("", "wxtoken-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // as root in a container, Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
	)
	// The browser lives as long as this context: bounded, so that a hung
	// browser cannot hang the test.
	life, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		chromedp.Cancel(ctx) // closes the browser and waits for it
		cancelTab()
		cancelAlloc()
		stop()
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("the browser profile %s could not be removed", profile)
	})
	return ctx
}

// artifacts is where the browser test leaves its screenshots:
// $WXTOKEN_ARTIFACTS, or a temporary directory.
func artifacts(t *testing.T) string {
	if dir := os.Getenv("WXTOKEN_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

var durationPart = regexp.MustCompile(`(\d+)([dhms])`)

// countdownSeconds reads a countdown as the page shows it ("1h 59m 58s",
// "in 4m 05s", "12s") in seconds; -1 if it shows none.
func countdownSeconds(text string) int {
	parts := durationPart.FindAllStringSubmatch(text, -1)
	if parts == nil {
		return -1
	}
	unit := map[string]int{"d": 86400, "h": 3600, "m": 60, "s": 1}
	total := 0
	for _, p := range parts {
		n, _ := strconv.Atoi(p[1])
		total += n * unit[p[2]]
	}
	return total
}

// TestDashboardInBrowser drives the dashboard in headless Chromium as an
// operator would: a wrong key is refused; the operator signs in, sees the
// credentials with countdowns that run, refreshes one and sees its
// countdowns start again from a new token; searches a platform's
// authorizers; a viewer sees the same without any action button; an admin
// adds, disables and removes a credential, and adds a client, is shown its
// key once, rotates it and removes the client. Screenshots are kept.
func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	// wx9's appid is not WeChat's: its fetches fail, and the page says why.
	const wx9 = `
  - {id: wx9, kind: mp, appid: wx0000000000000009, secret: secret9, mode: classic}`
	addr, _, fake := platformNode(t, wx9, "wxauth01", "wxauth02", "wxauth03", "wxshop77")
	fake.AddApp(app3, secret3)
	page := "http://" + addr + "/ui/"

	// Each step is bounded on its own, so that one that cannot happen
	// (a click that lands on nothing) fails the test at once, naming
	// itself. The first step, which starts the browser, is not: the
	// browser lives as long as the context it starts with.
	started := false
	step := func() (context.Context, context.CancelFunc) {
		if !started {
			started = true
			return ctx, func() {}
		}
		return context.WithTimeout(ctx, 30*time.Second)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// press clicks a table's button. A poll that brings new data redraws
	// the row, and a redraw between finding the button and clicking it
	// loses the click, as it would a person's: press tries again then.
	press := func(what, sel string) {
		t.Helper()
		for try := 1; ; try++ {
			sctx, cancel := step()
			err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(sel)))
			cancel()
			if err == nil {
				return
			}
			if try == 3 || !strings.Contains(err.Error(), "Could not find node") {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	text := func(js string) string {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	// await waits until the JavaScript expression is true.
	await := func(what, js string) {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("waiting until %s (%s): %v", what, js, err)
		}
	}
	const (
		row    = `document.querySelector('#credentials tr[data-id="wx1"]')`
		served = row + `.querySelector('td.serve .countdown').textContent`
		next   = row + `.querySelector('td.next .countdown').textContent`
	)

	dir := artifacts(t)
	screenshot := func(name string, shot chromedp.Action[[]byte]) {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		png, err := chromedp.Run(sctx, shot)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d KB)", path, len(png)/1024)
	}

	// A wrong key: an error, and no dashboard.
	do("open the page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#key")))
	screenshot("login.png", chromedp.CaptureScreenshot())
	do("sign in with a wrong key", chromedp.SendKeys(chromedp.CSS("#key"), "not-an-admin-key-0000"), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := text(`document.querySelector('#login-error').textContent`); !strings.Contains(msg, "not an admin key") {
		t.Errorf("wrong key: the page says %q", msg)
	}
	if text(`String(document.querySelector('#app').hidden)`) != "true" {
		t.Error("the dashboard shows after a wrong key")
	}

	// The operator signs in and sees wx1 with its countdowns running.
	do("sign in", chromedp.Evaluate[chromedp.Void](`document.querySelector('#key').value = ''`), chromedp.SendKeys(chromedp.CSS("#key"), opsKey),
		chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS(`#credentials tr[data-id="wx1"]`)))
	await("wx1's countdowns show", served+` !== '' && `+next+` !== ''`)
	s0, n0 := countdownSeconds(text(served)), countdownSeconds(text(next))
	if s0 < 3600 || n0 < 3600 || n0 > s0 {
		t.Fatalf("wx1 served for %q, next refresh %q: want over an hour each, the refresh first (tokens live 2h)", text(served), text(next))
	}
	if got := text(row + `.querySelector('td.quota').textContent`); !strings.HasSuffix(got, "/ 2,000") {
		t.Errorf("wx1's fetches today read %q, want n / 2,000", got)
	}
	if got := text(row + `.querySelector('.badge').textContent`); got != "ok" {
		t.Errorf("wx1's state badge says %q, want ok", got)
	}
	// The countdowns run on the page, between the polls: wait until the
	// served-for one has gone down by three seconds, which the refresh
	// below must win back (it is read within a second or two of it).
	await("the countdown runs", fmt.Sprintf(`(() => { const m = (%s).match(/(\d+)s$/); return m && (%d - Number(m[1]) + 60) %% 60 >= 3 })()`, served, s0%60))
	s1, n1 := countdownSeconds(text(served)), countdownSeconds(text(next))
	if s1 >= s0 || n1 >= n0 {
		t.Fatalf("countdowns did not run: served %d → %d s, next refresh %d → %d s", s0, s1, n0, n1)
	}

	// Refresh: a new token, and both countdowns start again from it.
	issued := text(row + `.dataset.issued`)
	press("refresh wx1", `button[data-action="refresh"][data-id="wx1"]`)
	await("wx1 shows a new token", row+`.dataset.issued !== `+strconv.Quote(issued))
	s2, n2 := countdownSeconds(text(served)), countdownSeconds(text(next))
	if s2 <= s1 || n2 <= n1 {
		t.Errorf("after the refresh: served for %d s (was %d), next refresh in %d s (was %d); want both to jump up", s2, s1, n2, n1)
	}
	await("a toast says the refresh is done", `[...document.querySelectorAll('.toast')].some(e => e.textContent.includes('Refresh: wx1 done'))`)
	await("the audit table shows the refresh", `[...document.querySelectorAll('#audit tbody tr')].some(r => r.textContent.includes('credential.refresh') && r.textContent.includes('ops'))`)

	// The platform and its authorizers, refreshed like any credential
	// (their ids hold a slash).
	await("the platform's authorizers show", `document.querySelectorAll('section[data-platform="plat"] tbody tr[data-id^="plat/"]').length === 4`)
	const auth1 = `document.querySelector('section[data-platform="plat"] tr[data-id="plat/wxauth01"]')`
	authIssued := text(auth1 + `.dataset.issued`)
	press("refresh an authorizer", `button[data-action="refresh"][data-id="plat/wxauth01"]`)
	await("the authorizer shows a new token", auth1+`.dataset.issued !== `+strconv.Quote(authIssued))
	if got := text(`document.querySelector('section[data-platform="plat"] .platform-head').textContent`); !strings.Contains(got, "ago") || !strings.Contains(got, "4") {
		t.Errorf("platform head %q: want the ticket's age and 4 authorizers", got)
	}
	await("the host is healthy", `document.querySelector('#upstreams tbody').textContent.includes('healthy')`)
	await("the instance is ready", `document.querySelector('#health').textContent === 'Ready'`)
	await("wx9 shows why it has no token", `document.querySelector('#credentials tr[data-id="wx9"] td.cause') !== null`)
	if got := text(`document.querySelector('#credentials tr[data-id="wx9"]').textContent`); !strings.Contains(got, "unavailable") || !strings.Contains(got, "40013") {
		t.Errorf("wx9's row %q: want state unavailable and the cause, 40013", got)
	}
	await("the toast is gone", `document.querySelectorAll('.toast').length === 0`)

	screenshot("dashboard.png", chromedp.FullScreenshot(100)) // 100: PNG
	do("narrow the window", chromedp.EmulateViewport(420, 900))
	screenshot("dashboard-narrow.png", chromedp.CaptureScreenshot())
	do("widen the window", chromedp.EmulateViewport(1440, 1000))

	do("search authorizers", chromedp.SendKeys(chromedp.CSS(`section[data-platform="plat"] input[type=search]`), "SHOP"))
	await("the search keeps one authorizer", `(() => { const r = document.querySelectorAll('section[data-platform="plat"] tbody tr[data-id]'); return r.length === 1 && r[0].dataset.id === 'plat/wxshop77' })()`)

	// A viewer sees everything and can do nothing.
	do("sign out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#key")))
	do("sign in as a viewer", chromedp.SendKeys(chromedp.CSS("#key"), viewerKey), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#credentials tr[data-id="wx1"]`)))
	await("the viewer's authorizers show", `document.querySelectorAll('section[data-platform="plat"] tbody tr[data-id]').length === 4`)
	if n := text(`String(document.querySelectorAll('button[data-action]').length)`); n != "0" {
		t.Errorf("a viewer is shown %s action buttons, want none", n)
	}
	if who := text(`document.querySelector('#who').textContent`); !strings.Contains(who, "view") || !strings.Contains(who, "viewer") {
		t.Errorf("header shows %q for the viewer", who)
	}

	// An admin adds a credential and a client with the forms, and
	// disables, rotates and removes them with the buttons.
	do("sign in as an admin", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), rootKey), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#credentials tr[data-id="wx1"]`)))
	do("add a credential", chromedp.Click(chromedp.CSS("#open-add-credential")), chromedp.WaitVisible(chromedp.CSS(`#add-credential input[name=id]`)),
		chromedp.SendKeys(chromedp.CSS(`#add-credential input[name=id]`), "wx1"),
		chromedp.SendKeys(chromedp.CSS(`#add-credential input[name=appid]`), app3),
		chromedp.SendKeys(chromedp.CSS(`#add-credential input[name=secret]`), secret3),
		chromedp.Click(chromedp.CSS(`#add-credential button[type=submit]`)))
	await("the form says why wx1 cannot be added", `(() => { const e = document.querySelector('#add-credential .error'); return !e.hidden && e.textContent.includes('configuration file') })()`)
	screenshot("add-credential.png", chromedp.CaptureScreenshot())
	do("add it as wx3", chromedp.Evaluate[chromedp.Void](`document.querySelector('#add-credential input[name=id]').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#add-credential input[name=id]`), "wx3"),
		chromedp.Click(chromedp.CSS(`#add-credential button[type=submit]`)))
	await("wx3 is served", `document.querySelector('#credentials tr[data-id="wx3"][data-state="ok"]') !== null`)
	if st, tok := tokenWith(t, addr, "wx3", clientKey); st != 200 || tok == "" {
		t.Errorf("wx3 added in the page: the API answers %d", st)
	}
	press("disable wx3", `button[data-action="disable"][data-id="wx3"]`)
	do("disable wx3", chromedp.WaitVisible(chromedp.CSS("#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	await("wx3 is disabled", `document.querySelector('#credentials tr[data-id="wx3"][data-state="disabled"]') !== null`)
	if st, _ := tokenWith(t, addr, "wx3", clientKey); st != 404 {
		t.Errorf("wx3 disabled in the page: the API answers %d, want 404", st)
	}
	press("remove wx3", `button[data-action="remove"][data-id="wx3"]`)
	do("remove wx3", chromedp.WaitVisible(chromedp.CSS("#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	await("wx3 is gone", `document.querySelector('#credentials tr[data-id="wx3"]') === null`)

	do("add a client", chromedp.Click(chromedp.CSS("#open-add-client")), chromedp.WaitVisible(chromedp.CSS(`#add-client input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`#add-client input[name=name]`), "shop"),
		chromedp.SendKeys(chromedp.CSS(`#add-client input[name=allow]`), "wx1, wx2"),
		chromedp.Click(chromedp.CSS(`#add-client button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#show-key-value")))
	shopKey := text(`document.querySelector('#show-key-value').textContent`)
	if st, _ := tokenWith(t, addr, "wx1", shopKey); st != 200 {
		t.Errorf("the key the page showed for client shop: %d for wx1, want 200", st)
	}
	if st, _ := tokenWith(t, addr, "wx9", shopKey); st != 403 {
		t.Errorf("client shop may use wx1 and wx2 only; wx9 answered %d, want 403", st)
	}
	do("close the key", chromedp.Click(chromedp.CSS("#show-key button")))
	await("shop is listed", `document.querySelector('#clients tr[data-id="shop"]') !== null`)
	press("rotate shop's key", `button[data-what="client"][data-action="rotate"][data-id="shop"]`)
	do("rotate shop's key", chromedp.WaitVisible(chromedp.CSS("#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS("#show-key-value")))
	await("the new key shows", `document.querySelector('#show-key-value').textContent !== `+strconv.Quote(shopKey))
	newKey := text(`document.querySelector('#show-key-value').textContent`)
	for _, k := range []string{shopKey, newKey} {
		if st, _ := tokenWith(t, addr, "wx1", k); st != 200 {
			t.Errorf("after the rotation, a key of shop answers %d, want 200 (the old one has a grace period)", st)
		}
	}
	do("close the new key", chromedp.Click(chromedp.CSS("#show-key button")))
	press("remove shop", `button[data-what="client"][data-action="remove"][data-id="shop"]`)
	do("remove shop", chromedp.WaitVisible(chromedp.CSS("#confirm")), chromedp.Click(chromedp.CSS("#confirm-ok")))
	await("shop is gone", `document.querySelector('#clients tr[data-id="shop"]') === null`)
	if st, _ := tokenWith(t, addr, "wx1", newKey); st != 401 {
		t.Errorf("a removed client's key answers %d, want 401", st)
	}

	// The server's audit log has the logins, the refused one and the
	// refresh, each with who did it.
	evs := auditLog(t, addr, "limit=100")
	for _, want := range []auditEvent{
		{Action: "ui.login", Result: "refused"},
		{Actor: "ops", Action: "ui.login", Result: "ok"},
		{Actor: "ops", Action: "credential.refresh", Target: "wx1", Result: "ok"},
		{Actor: "ops", Action: "credential.refresh", Target: "plat/wxauth01", Result: "ok"},
		{Actor: "ops", Action: "ui.logout", Result: "ok"},
		{Actor: "view", Action: "ui.login", Result: "ok"},
		{Actor: "root", Action: "credential.add", Target: "wx3", Result: "ok"},
		{Actor: "root", Action: "credential.disable", Target: "wx3", Result: "ok"},
		{Actor: "root", Action: "credential.remove", Target: "wx3", Result: "ok"},
		{Actor: "root", Action: "client.add", Target: "shop", Result: "ok"},
		{Actor: "root", Action: "client.rotate", Target: "shop", Result: "ok"},
		{Actor: "root", Action: "client.remove", Target: "shop", Result: "ok"},
	} {
		if !hasEvent(evs, want.Actor, want.Action, want.Target, want.Result) {
			t.Errorf("audit log lacks %+v", want)
		}
	}
}

// dashboardLogin signs in over plain HTTP and returns the session cookie
// and the CSRF token.
func dashboardLogin(t *testing.T, addr, key string) (string, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/ui/login", "application/json", strings.NewReader(`{"key":"`+key+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&ans)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "wxtoken_session" {
			cookie = c.Name + "=" + c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/", c)
			}
		}
	}
	if resp.StatusCode != 200 || cookie == "" || ans.CSRF == "" {
		t.Fatalf("login: %d, cookie %q, csrf %q", resp.StatusCode, cookie, ans.CSRF)
	}
	return cookie, ans.CSRF
}

// dashboardCall makes a request the way the page does, with the session
// cookie and, if given, the CSRF token.
func dashboardCall(t *testing.T, addr, method, path, cookie, csrf string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
	req.Header.Set("Cookie", cookie)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDashboardAPI checks the dashboard's requests on a running server:
// a change without the CSRF token is refused and changes nothing; with
// it, the admin API does it under the signed-in admin's role; and the
// dashboard is not served when the file names no admin.
func TestDashboardAPI(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	n := startNode(t, adminConfig("data_dir: "+t.TempDir(), up))
	addr := n.addr()
	calls := func() int { return fake.Stats(app1).ClassicCalls }
	getToken(t, addr, "wx1")
	time.Sleep(1100 * time.Millisecond) // min_force_interval: 1s

	cookie, csrf := dashboardLogin(t, addr, opsKey)
	if st, body := dashboardCall(t, addr, "GET", "/ui/api/credentials", cookie, ""); st != 200 || !strings.Contains(body, `"wx1"`) {
		t.Fatalf("credentials through the dashboard: %d %s", st, body)
	}
	before := calls()
	if st, _ := dashboardCall(t, addr, "POST", "/ui/api/credentials/wx1/refresh", cookie, ""); st != 403 {
		t.Errorf("refresh without the CSRF token: %d, want 403", st)
	}
	if st, _ := dashboardCall(t, addr, "POST", "/ui/api/credentials/wx1/refresh", "", csrf); st != 401 {
		t.Errorf("refresh without the session: %d, want 401", st)
	}
	if got := calls(); got != before {
		t.Fatalf("refused requests fetched %d tokens", got-before)
	}
	if st, body := dashboardCall(t, addr, "POST", "/ui/api/credentials/wx1/refresh", cookie, csrf); st != 200 {
		t.Fatalf("refresh: %d %s", st, body)
	}
	if got := calls(); got != before+1 {
		t.Errorf("the refresh fetched %d tokens, want 1", got-before)
	}

	// A viewer's session carries the viewer's role.
	vcookie, vcsrf := dashboardLogin(t, addr, viewerKey)
	if st, _ := dashboardCall(t, addr, "POST", "/ui/api/credentials/wx1/refresh", vcookie, vcsrf); st != 403 {
		t.Errorf("a viewer's refresh: %d, want 403", st)
	}
	if !hasEvent(auditLog(t, addr, "action=credential.refresh"), "view", "credential.refresh", "wx1", "refused") {
		t.Error("the viewer's refused refresh is not in the audit log")
	}

	// Without admins there is no dashboard.
	_, up2 := upstream(t, wxtest.Config{})
	bare := startNode(t, strings.TrimSuffix(adminConfig("data_dir: "+t.TempDir(), up2), adminsYAML))
	if st, _ := dashboardCall(t, bare.addr(), "GET", "/ui/", "", ""); st != 404 {
		t.Errorf("/ui/ without admins: %d, want 404", st)
	}
}
