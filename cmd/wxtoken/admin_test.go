package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// Admin keys of the admin tests, one per role.
const (
	rootKey   = "admin-root-key-0123456789"
	opsKey    = "admin-ops-key-0123456789"
	viewerKey = "admin-viewer-key-0123456789"
)

// app3 is an account the configuration file does not name: the admin
// API adds it.
const app3, secret3 = "wx0000000000000003", "secret-three-NEVER-SHOWN"

const adminsYAML = `admins:
  - {name: root, key: ` + rootKey + `, role: admin}
  - {name: ops, key: ` + opsKey + `, role: operator}
  - {name: view, key: ` + viewerKey + `, role: viewer}
`

// adminConfig is wx1 and wx2 from the file, client e2e, the three admin
// keys, on the store section given.
func adminConfig(storeYAML, up string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
%s
upstream: {api: %s, wecom: %s, timeout: 2s}
refresh: {min_force_interval: 1s}
credentials:%s
clients:
  - {name: e2e, key: %s, allow: ["*"]}
%s`, storeYAML, up, up, mpCredentials, clientKey, adminsYAML)
}

// adminCall makes one admin request and decodes its JSON answer into out
// (if not nil). It fails the test if an answer shows a secret.
func adminCall(t *testing.T, addr, method, path, key, body string, out any) int {
	t.Helper()
	status, text := keyCall(t, addr, method, path, key, body)
	for _, s := range []string{secret3, "secret1", "secret2"} {
		if strings.Contains(text, s) {
			t.Fatalf("%s %s answered a secret: %s", method, path, text)
		}
	}
	if out != nil && text != "" {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, status, text, err)
		}
	}
	return status
}

type adminCredential struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	State  string `json:"state"`
}

func listAdminCredentials(t *testing.T, addr string) map[string]adminCredential {
	t.Helper()
	var out struct{ Credentials []adminCredential }
	if st := adminCall(t, addr, "GET", "/v1/admin/credentials", viewerKey, "", &out); st != 200 {
		t.Fatalf("list: %d", st)
	}
	m := map[string]adminCredential{}
	for _, c := range out.Credentials {
		m[c.ID] = c
	}
	return m
}

type auditEvent struct {
	Actor, Action, Target, Result string
	Status                        int
}

func auditLog(t *testing.T, addr, query string) []auditEvent {
	t.Helper()
	var out struct{ Events []auditEvent }
	if st := adminCall(t, addr, "GET", "/v1/admin/audit?"+query, viewerKey, "", &out); st != 200 {
		t.Fatalf("audit: %d", st)
	}
	return out.Events
}

func hasEvent(evs []auditEvent, actor, action, target, result string) bool {
	for _, e := range evs {
		if e.Actor == actor && e.Action == action && e.Target == target && e.Result == result {
			return true
		}
	}
	return false
}

// tokenWith asks for id's token with key and returns the status and token.
func tokenWith(t *testing.T, addr, id, key string) (int, string) {
	t.Helper()
	status, body := keyCall(t, addr, "GET", "/v1/tokens/"+id, key, "")
	var tr tokenReply
	json.Unmarshal([]byte(body), &tr)
	return status, tr.AccessToken
}

// TestAdminCRUD adds, uses, disables, rotates and removes a credential and
// a client at run time, on each store, and checks that they outlive a
// restart.
func TestAdminCRUD(t *testing.T) {
	for _, storeKind := range []string{"bolt", "redis"} {
		t.Run(storeKind, func(t *testing.T) {
			fake, up := upstream(t, wxtest.Config{})
			fake.AddApp(app3, secret3)
			storeYAML := "data_dir: " + t.TempDir()
			if storeKind == "redis" {
				rs := redistest.New(t, redistest.Options{})
				storeYAML = fmt.Sprintf("store: {type: redis, addrs: [%q]}", rs.Addr())
			}
			yaml := adminConfig(storeYAML, up)
			n := startNode(t, yaml)
			addr := n.addr()

			// Add wx3; the file's client "*" may use it at once.
			body := `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"` + secret3 + `","mode":"classic","tickets":["jsapi"]}`
			var added adminCredential
			if st := adminCall(t, addr, "POST", "/v1/admin/credentials", rootKey, body, &added); st != 201 || added.Source != "admin" {
				t.Fatalf("add: %d %+v", st, added)
			}
			tok := getToken(t, addr, "wx3").AccessToken
			if _, err := (&wechat.Client{API: up}).CallbackIP(t.Context(), tok); err != nil {
				t.Fatalf("the added credential's token fails at WeChat: %v", err)
			}
			if st, body := keyCall(t, addr, "GET", "/v1/tokens/wx3/tickets/jsapi", clientKey, ""); st != 200 || !strings.Contains(body, `"ticket"`) {
				t.Errorf("the added credential's ticket: %d %s", st, body)
			}
			if st, body := keyCall(t, addr, "POST", "/v1/tokens/wx3/jssdk", clientKey, `{"url":"https://example.com/a"}`); st != 200 || !strings.Contains(body, app3) {
				t.Errorf("the added credential's wx.config: %d %s", st, body)
			}
			if st := adminCall(t, addr, "POST", "/v1/admin/credentials", rootKey, body, nil); st != 409 {
				t.Errorf("adding it twice: %d, want 409", st)
			}
			list := listAdminCredentials(t, addr)
			if list["wx3"].Source != "admin" || list["wx1"].Source != "file" || list["wx3/tickets/jsapi"].Source != "derived" {
				t.Errorf("list: %+v", list)
			}

			// A client added at run time, allowed wx3 only.
			var cl struct{ Name, Key string }
			if st := adminCall(t, addr, "POST", "/v1/admin/clients", rootKey, `{"name":"shop","allow":["wx3"]}`, &cl); st != 201 || len(cl.Key) < 32 {
				t.Fatalf("add client: %d %+v", st, cl)
			}
			if st, got := tokenWith(t, addr, "wx3", cl.Key); st != 200 || got != tok {
				t.Errorf("the new client's key: %d %q", st, got)
			}
			if st, _ := tokenWith(t, addr, "wx1", cl.Key); st != 403 {
				t.Errorf("the new client on a credential it is not allowed: %d", st)
			}

			// Rotation: the old key works through its grace; a rotation
			// with no grace ends the key before it at once.
			var rot struct{ Key string }
			if st := adminCall(t, addr, "POST", "/v1/admin/clients/shop/rotate", rootKey, `{"grace":"1h"}`, &rot); st != 200 || rot.Key == "" || rot.Key == cl.Key {
				t.Fatalf("rotate: %d %+v", st, rot)
			}
			for _, k := range []string{cl.Key, rot.Key} {
				if st, _ := tokenWith(t, addr, "wx3", k); st != 200 {
					t.Errorf("within the grace, key %.6s…: %d", k, st)
				}
			}
			var rot2 struct{ Key string }
			if st := adminCall(t, addr, "POST", "/v1/admin/clients/shop/rotate", rootKey, `{"grace":"0s"}`, &rot2); st != 200 {
				t.Fatalf("rotate: %d", st)
			}
			if st, _ := tokenWith(t, addr, "wx3", rot.Key); st != 401 {
				t.Errorf("a key rotated out with no grace: %d, want 401", st)
			}
			if st, _ := tokenWith(t, addr, "wx3", cl.Key); st != 200 {
				t.Errorf("the first key, still in its hour of grace: %d", st)
			}

			// Disabled: not served; enabled again: the same token, no fetch.
			calls := fake.Stats(app3).ClassicCalls
			if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx3/disable", opsKey, "", nil); st != 200 {
				t.Fatalf("disable: %d", st)
			}
			if st, _ := tokenWith(t, addr, "wx3", clientKey); st != 404 {
				t.Errorf("a disabled credential: %d, want 404", st)
			}
			if got := listAdminCredentials(t, addr)["wx3"].State; got != "disabled" {
				t.Errorf("listed as %q, want disabled", got)
			}
			if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx3/enable", opsKey, "", nil); st != 200 {
				t.Fatalf("enable: %d", st)
			}
			if got := getToken(t, addr, "wx3").AccessToken; got != tok {
				t.Errorf("enabled again: a new token")
			}

			// A restart keeps what was added; still no fetch.
			n.stop()
			n = startNode(t, yaml)
			addr = n.addr()
			if got := getToken(t, addr, "wx3").AccessToken; got != tok {
				t.Errorf("after a restart: a new token")
			}
			if st, _ := tokenWith(t, addr, "wx3", rot2.Key); st != 200 {
				t.Errorf("after a restart, the client's key: %d", st)
			}
			if got := fake.Stats(app3).ClassicCalls; got != calls {
				t.Errorf("%d fetches through disable, enable and restart, want 0", got-calls)
			}

			// Removed: neither served nor listed.
			if st := adminCall(t, addr, "DELETE", "/v1/admin/credentials/wx3", rootKey, "", nil); st != 200 {
				t.Fatalf("remove: %d", st)
			}
			if st, _ := tokenWith(t, addr, "wx3", clientKey); st != 404 {
				t.Errorf("a removed credential: %d, want 404", st)
			}
			if _, ok := listAdminCredentials(t, addr)["wx3"]; ok {
				t.Error("a removed credential is listed")
			}
			if st := adminCall(t, addr, "DELETE", "/v1/admin/clients/shop", rootKey, "", nil); st != 200 {
				t.Fatalf("remove client: %d", st)
			}
			if st, _ := tokenWith(t, addr, "wx1", rot2.Key); st != 401 {
				t.Errorf("a removed client's key: %d, want 401", st)
			}

			evs := auditLog(t, addr, "limit=100")
			for _, want := range []auditEvent{
				{Actor: "root", Action: "credential.add", Target: "wx3", Result: "ok"},
				{Actor: "root", Action: "credential.add", Target: "wx3", Result: "refused"},
				{Actor: "root", Action: "client.add", Target: "shop", Result: "ok"},
				{Actor: "root", Action: "client.rotate", Target: "shop", Result: "ok"},
				{Actor: "ops", Action: "credential.disable", Target: "wx3", Result: "ok"},
				{Actor: "ops", Action: "credential.enable", Target: "wx3", Result: "ok"},
				{Actor: "root", Action: "credential.remove", Target: "wx3", Result: "ok"},
				{Actor: "root", Action: "client.remove", Target: "shop", Result: "ok"},
			} {
				if !hasEvent(evs, want.Actor, want.Action, want.Target, want.Result) {
					t.Errorf("audit log lacks %+v", want)
				}
			}
		})
	}
}

// TestAdminRoles: each role may do what it is given and nothing more,
// client keys do not open the admin API, and every refusal is in the
// audit log.
func TestAdminRoles(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddApp(app3, secret3)
	n := startNode(t, adminConfig("data_dir: "+t.TempDir(), up))
	addr := n.addr()
	add := `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"` + secret3 + `"}`
	cases := []struct {
		key, method, path, body string
		want                    int
		actor                   string
	}{
		{"", "GET", "/v1/admin/credentials", "", 401, ""},
		{clientKey, "GET", "/v1/admin/credentials", "", 401, ""},
		{"wrong-key-0123456789", "POST", "/v1/admin/credentials", add, 401, ""},
		{viewerKey, "POST", "/v1/admin/credentials", add, 403, "view"},
		{viewerKey, "POST", "/v1/admin/credentials/wx1/refresh", "", 403, "view"},
		{opsKey, "POST", "/v1/admin/credentials", add, 403, "ops"},
		{opsKey, "POST", "/v1/admin/clients", `{"name":"x","allow":["wx1"]}`, 403, "ops"},
		{viewerKey, "GET", "/v1/admin/credentials", "", 200, "view"},
		{opsKey, "POST", "/v1/admin/credentials/wx1/unblock", "", 200, "ops"},
		{rootKey, "POST", "/v1/admin/credentials", add, 201, "root"},
	}
	for _, c := range cases {
		if st := adminCall(t, addr, c.method, c.path, c.key, c.body, nil); st != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.key, st, c.want)
		}
	}
	refused := auditLog(t, addr, "result=refused&limit=100")
	if len(refused) != 7 {
		t.Errorf("%d refusals in the audit log, want 7: %+v", len(refused), refused)
	}
	if !hasEvent(refused, "view", "credential.add", "wx3", "refused") && !hasEvent(refused, "view", "credential.add", "", "refused") {
		t.Errorf("the viewer's refused add is not logged: %+v", refused)
	}
	if !hasEvent(auditLog(t, addr, "actor=ops&action=credential"), "ops", "credential.unblock", "wx1", "ok") {
		t.Error("the operator's unblock is not logged")
	}
	var who struct{ Name, Role string }
	if adminCall(t, addr, "GET", "/v1/admin/whoami", opsKey, "", &who); who.Name != "ops" || who.Role != "operator" {
		t.Errorf("whoami: %+v", who)
	}
	// Paging: two pages of one event, in order, then the cursor moves on.
	var p1, p2 struct {
		Events []struct{ ID string }
		Next   string
	}
	adminCall(t, addr, "GET", "/v1/admin/audit?limit=1", viewerKey, "", &p1)
	adminCall(t, addr, "GET", "/v1/admin/audit?limit=1&before="+p1.Next, viewerKey, "", &p2)
	if len(p1.Events) != 1 || len(p2.Events) != 1 || p2.Events[0].ID >= p1.Events[0].ID {
		t.Errorf("paging: %+v then %+v", p1, p2)
	}
}

// TestAdminBadInput: every admin route refuses bad input with a clear
// 4xx, in the API's error shape, and changes nothing.
func TestAdminBadInput(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddApp(app3, secret3)
	n := startNode(t, adminConfig("data_dir: "+t.TempDir(), up))
	addr := n.addr()
	if st := adminCall(t, addr, "POST", "/v1/admin/clients", rootKey, `{"name":"shop","allow":["wx1"]}`, nil); st != 201 {
		t.Fatalf("add client: %d", st)
	}
	before := listAdminCredentials(t, addr)
	big := `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v1/admin/credentials", ``, 400},
		{"POST", "/v1/admin/credentials", `{`, 400},
		{"POST", "/v1/admin/credentials", `[]`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"wx3"} {}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"s","scret":"x"}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"wx3","kind":"mp","appid":"nope","secret":"s"}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"wx3","kind":"mp","appid":"` + app3 + `"}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"bad id!","kind":"mp","appid":"` + app3 + `","secret":"s"}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"p","kind":"component","component_appid":"` + app3 + `","secret":"s"}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"s","callback":{"token":"t"}}`, 400},
		{"POST", "/v1/admin/credentials", `{"id":"wx1","kind":"mp","appid":"` + app3 + `","secret":"s"}`, 409},
		{"POST", "/v1/admin/credentials", big, 413},
		{"PUT", "/v1/admin/credentials/nosuch", `{"kind":"mp","appid":"` + app3 + `","secret":"s"}`, 404},
		{"PUT", "/v1/admin/credentials/wx1", `{"kind":"mp","appid":"` + app3 + `","secret":"s"}`, 409},
		{"PUT", "/v1/admin/credentials/wx9", `{"id":"wx8","kind":"mp","appid":"` + app3 + `","secret":"s"}`, 400},
		{"DELETE", "/v1/admin/credentials/nosuch", ``, 404},
		{"DELETE", "/v1/admin/credentials/wx1", ``, 409},
		{"POST", "/v1/admin/credentials/nosuch/disable", ``, 404},
		{"POST", "/v1/admin/credentials/wx1/disable", ``, 409},
		{"POST", "/v1/admin/credentials/nosuch/enable", ``, 404},
		{"POST", "/v1/admin/credentials/nosuch/refresh", ``, 404},
		{"POST", "/v1/admin/credentials/nosuch/unblock", ``, 404},
		{"POST", "/v1/admin/credentials/nosuch/clear_quota", ``, 404},
		{"POST", "/v1/admin/clients", `{"name":"","allow":["wx1"]}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"x","allow":["nosuch"]}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"x","allow":[]}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"x","key":"short","allow":["wx1"]}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"x","key":"` + rootKey + `","allow":["wx1"]}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"x","key":"` + clientKey + `","allow":["wx1"]}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"x","allow":["wx1"],"sdk":"nosuch"}`, 400},
		{"POST", "/v1/admin/clients", `{"name":"e2e","allow":["wx1"]}`, 409},
		{"POST", "/v1/admin/clients", `{"name":"shop","allow":["wx1"]}`, 409},
		{"POST", "/v1/admin/clients", `{"name":"x","allow":["wx1"],"extra":1}`, 400},
		{"PUT", "/v1/admin/clients/nosuch", `{"allow":["wx1"]}`, 404},
		{"PUT", "/v1/admin/clients/shop", `{"allow":["wx1"],"key":"0123456789abcdef0"}`, 400},
		{"PUT", "/v1/admin/clients/shop", `{"name":"other","allow":["wx1"]}`, 400},
		{"PUT", "/v1/admin/clients/e2e", `{"allow":["wx1"]}`, 409},
		{"DELETE", "/v1/admin/clients/nosuch", ``, 404},
		{"DELETE", "/v1/admin/clients/e2e", ``, 409},
		{"POST", "/v1/admin/clients/nosuch/rotate", ``, 404},
		{"POST", "/v1/admin/clients/shop/rotate", `{"grace":"forever"}`, 400},
		{"POST", "/v1/admin/clients/shop/rotate", `{"grace":"-1h"}`, 400},
		{"POST", "/v1/admin/clients/e2e/rotate", ``, 409},
		{"POST", "/v1/admin/clients/nosuch/disable", ``, 404},
		{"GET", "/v1/admin/audit?limit=0", ``, 400},
		{"GET", "/v1/admin/audit?limit=x", ``, 400},
		{"GET", "/v1/admin/audit?result=maybe", ``, 400},
		{"GET", "/v1/admin/nosuch", ``, 404},
	}
	for _, c := range cases {
		var out struct {
			Error struct{ Code, Message string }
		}
		st := adminCall(t, addr, c.method, c.path, rootKey, c.body, &out)
		if st != c.want || out.Error.Code == "" || out.Error.Message == "" {
			t.Errorf("%s %s %.60s: %d %+v, want %d with an error code and message", c.method, c.path, c.body, st, out, c.want)
		}
	}
	if after := listAdminCredentials(t, addr); len(after) != len(before) {
		t.Errorf("bad input changed the credentials: %v, then %v", before, after)
	}
	var cls struct{ Clients []struct{ Name string } }
	adminCall(t, addr, "GET", "/v1/admin/clients", viewerKey, "", &cls)
	if len(cls.Clients) != 2 {
		t.Errorf("bad input changed the clients: %+v", cls)
	}
	if st, _ := tokenWith(t, addr, "wx1", clientKey); st != 200 {
		t.Errorf("the file's client after all that: %d", st)
	}
	refused := auditLog(t, addr, "result=refused&limit=1000")
	if len(refused) < len(cases)-4 { // the GETs' refusals are logged too; 404s on reads as well
		t.Errorf("%d refusals logged for %d bad requests", len(refused), len(cases))
	}
}

// TestAdminClusterRedis: what is added on one instance is served by the
// other, disabling on the second stops the first, and the credential is
// fetched once for both.
func TestAdminClusterRedis(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddApp(app3, secret3)
	rs := redistest.New(t, redistest.Options{})
	yaml := adminConfig(fmt.Sprintf("store: {type: redis, addrs: [%q]}", rs.Addr()), up)
	a, b := startNode(t, yaml), startNode(t, yaml)
	body := `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"` + secret3 + `","mode":"classic"}`
	if st := adminCall(t, a.addr(), "POST", "/v1/admin/credentials", rootKey, body, nil); st != 201 {
		t.Fatalf("add on a: %d", st)
	}
	ta := getToken(t, a.addr(), "wx3").AccessToken
	tb := getToken(t, b.addr(), "wx3").AccessToken
	if ta != tb {
		t.Errorf("the instances serve different tokens")
	}
	if got := fake.Stats(app3).ClassicCalls; got != 1 {
		t.Errorf("%d fetches for two instances, want 1", got)
	}
	var cl struct{ Key string }
	if st := adminCall(t, a.addr(), "POST", "/v1/admin/clients", rootKey, `{"name":"shop","allow":["wx3"]}`, &cl); st != 201 {
		t.Fatalf("add client on a: %d", st)
	}
	awaitStatus(t, "the client added on a, at b", func() int { st, _ := tokenWith(t, b.addr(), "wx3", cl.Key); return st }, 200)
	if st := adminCall(t, b.addr(), "POST", "/v1/admin/credentials/wx3/disable", opsKey, "", nil); st != 200 {
		t.Fatalf("disable on b: %d", st)
	}
	awaitStatus(t, "disabled on b, at a", func() int { st, _ := tokenWith(t, a.addr(), "wx3", clientKey); return st }, 404)
	if !hasEvent(auditLog(t, a.addr(), "target=wx3"), "ops", "credential.disable", "wx3", "ok") {
		t.Error("b's action is not in the audit log a reads")
	}
}

// awaitStatus polls until status returns want, failing after 10 s.
func awaitStatus(t *testing.T, what string, status func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := status()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAdminClearQuota: a credential blocked by a spent daily quota is
// served again after clear_quota, and the month's 10 are counted: the
// 11th is refused before it reaches WeChat.
func TestAdminClearQuota(t *testing.T) {
	_, up := upstream(t, wxtest.Config{DailyLimit: 1})
	n := startNode(t, adminConfig("data_dir: "+t.TempDir(), up))
	addr := n.addr()
	first := getToken(t, addr, "wx1").AccessToken
	// A forced refresh past the day's one call is refused (45009).
	time.Sleep(1100 * time.Millisecond) // refresh.min_force_interval
	var failed struct{ Error struct{ Message string } }
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx1/refresh", opsKey, "", &failed); st == 200 || !strings.Contains(failed.Error.Message, "45009") {
		t.Fatalf("a refresh past the daily limit: %d %+v, want 45009", st, failed)
	}
	var out struct {
		Credential struct{ State string }
		Used       int `json:"clear_quota_used_this_month"`
	}
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx1/clear_quota", opsKey, "", &out); st != 200 || out.Used != 1 {
		t.Fatalf("clear_quota: %d %+v", st, out)
	}
	// The refresh that was asked for and refused is made at once.
	awaitStatus(t, "a new token after clear_quota", func() int {
		if getToken(t, addr, "wx1").AccessToken != first {
			return 1
		}
		return 0
	}, 1)
	for i := 2; i <= 10; i++ {
		if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx1/clear_quota", opsKey, "", nil); st != 200 {
			t.Fatalf("clear_quota %d: %d", i, st)
		}
	}
	var refused struct{ Error struct{ Code string } }
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx1/clear_quota", opsKey, "", &refused); st != 429 || refused.Error.Code != "quota_spent" {
		t.Errorf("the 11th clear_quota: %d %+v, want 429 quota_spent", st, refused)
	}
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx2/clear_quota", viewerKey, "", nil); st != 403 {
		t.Errorf("clear_quota by a viewer: %d", st)
	}
}

// TestAdminCommand drives a running server with `wxtoken admin`, as an
// operator would.
func TestAdminCommand(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddApp(app3, secret3)
	n := startNode(t, adminConfig("data_dir: "+t.TempDir(), up))
	url := "http://" + n.addr()
	dir := t.TempDir()
	file := dir + "/wx3.yaml"
	writeFile(t, file, "id: wx3\nkind: mp\nappid: "+app3+"\nsecret: ${WX3_SECRET}\nmode: classic\n")
	t.Setenv("WX3_SECRET", secret3)
	admin := func(key string, args ...string) (string, error) {
		t.Setenv("WXTOKEN_ADMIN_KEY", key)
		var out, errOut strings.Builder
		err := run(t.Context(), append([]string{"admin", "-url", url}, args...), &out, &errOut)
		if strings.Contains(out.String()+errOut.String(), secret3) {
			t.Fatalf("admin %v printed the secret", args)
		}
		return out.String(), err
	}
	if out, err := admin(rootKey, "add", file); err != nil || !strings.Contains(out, `"source": "admin"`) {
		t.Fatalf("add: %v\n%s", err, out)
	}
	getToken(t, n.addr(), "wx3")
	if out, err := admin(viewerKey, "list"); err != nil || !strings.Contains(out, `"id": "wx3"`) {
		t.Errorf("list: %v\n%s", err, out)
	}
	_, err := admin(viewerKey, "remove", "wx3")
	if err == nil || !strings.Contains(err.Error(), "role viewer may not credential.remove") || !strings.Contains(err.Error(), "403") {
		t.Errorf("a viewer's remove: %v", err)
	}
	out, err := admin(rootKey, "add-client", "shop", "-allow", "wx3,wx1")
	var cl struct{ Key string }
	if err != nil || json.Unmarshal([]byte(out), &cl) != nil || cl.Key == "" {
		t.Fatalf("add-client: %v\n%s", err, out)
	}
	if st, _ := tokenWith(t, n.addr(), "wx1", cl.Key); st != 200 {
		t.Errorf("the client added by the command: %d", st)
	}
	if out, err := admin(rootKey, "rotate-key", "shop", "-grace", "0s"); err != nil || !strings.Contains(out, `"key"`) {
		t.Errorf("rotate-key: %v\n%s", err, out)
	}
	if st, _ := tokenWith(t, n.addr(), "wx1", cl.Key); st != 401 {
		t.Errorf("the key rotated out: %d", st)
	}
	if out, err := admin(opsKey, "disable", "wx3"); err != nil || !strings.Contains(out, `"state": "disabled"`) {
		t.Errorf("disable: %v\n%s", err, out)
	}
	if out, err := admin(viewerKey, "audit", "-actor", "root", "-action", "client"); err != nil || !strings.Contains(out, "client.rotate") || strings.Contains(out, "credential.add") {
		t.Errorf("audit: %v\n%s", err, out)
	}
	if _, err := admin(rootKey, "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("an unknown command: %v", err)
	}
	if _, err := admin("", "list"); err == nil || !strings.Contains(err.Error(), "WXTOKEN_ADMIN_KEY") {
		t.Errorf("no key: %v", err)
	}
	if _, err := admin(rootKey, "add", dir+"/nosuch.yaml"); err == nil {
		t.Error("add of a missing file succeeded")
	}
	writeFile(t, dir+"/typo.yaml", "id: x\nkind: mp\nappid: "+app3+"\nscret: s\n")
	if _, err := admin(rootKey, "add", dir+"/typo.yaml"); err == nil || !strings.Contains(err.Error(), `unknown field "scret"`) {
		t.Errorf("a file with a typo: %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAdminFacade: a credential and a client added at run time are
// served on the WeChat-compatible facade too, with the credential's
// tickets, and a rotated-out key stops working there as on the API.
func TestAdminFacade(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddApp(app3, secret3)
	yaml := strings.Replace(adminConfig("data_dir: "+t.TempDir(), up), "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:0\nwechat_listen: 127.0.0.1:0\n", 1)
	n := startNode(t, yaml)
	addr := n.addr()
	body := `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"` + secret3 + `","mode":"classic","tickets":["jsapi"]}`
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials", rootKey, body, nil); st != 201 {
		t.Fatalf("add: %d", st)
	}
	var cl struct{ Key string }
	if st := adminCall(t, addr, "POST", "/v1/admin/clients", rootKey, `{"name":"shop","allow":["wx3"],"sdk":"silenceper"}`, &cl); st != 201 {
		t.Fatalf("add client: %d", st)
	}
	want := getToken(t, addr, "wx3").AccessToken
	wx := "http://" + n.m.WeChatAddr()
	sdk := &wechat.Client{API: wx}
	got, err := sdk.ClassicToken(t.Context(), app3, cl.Key)
	if err != nil || got.Value != want {
		t.Fatalf("the facade's cgi-bin/token for the added credential and client: %+v %v, want %.8s…", got, err, want)
	}
	if _, err := sdk.Ticket(t.Context(), got.Value, "jsapi"); err != nil {
		t.Errorf("the facade's ticket for the added credential: %v", err)
	}
	if st := adminCall(t, addr, "POST", "/v1/admin/clients/shop/rotate", rootKey, `{"grace":"0s"}`, nil); st != 200 {
		t.Fatalf("rotate: %d", st)
	}
	if _, err := sdk.ClassicToken(t.Context(), app3, cl.Key); wechat.ErrCode(err) != 40125 {
		t.Errorf("a rotated-out key at the facade: %v, want 40125", err)
	}
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials/wx3/disable", rootKey, "", nil); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	if _, err := sdk.ClassicToken(t.Context(), app3, clientKey); wechat.ErrCode(err) == 0 {
		t.Error("the facade still serves a disabled credential")
	}
}
