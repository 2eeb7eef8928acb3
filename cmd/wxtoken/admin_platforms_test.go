package main

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/wxtest"
)

// platformNode runs an instance with the fake's third-party platform as
// credential plat, wx1 and wx2, the admin keys, and the given
// authorizers authorized, and the extra credentials given; it returns the instance's address and the
// fake's URL, and the fake. Refreshes are planned with almost no jitter, so that a
// token's next refresh is a fixed time after its issue.
func platformNode(t *testing.T, extraCredentials string, authorizers ...string) (string, string, *wxtest.Fake) {
	t.Helper()
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(app1, "secret1")
	fake.AddApp(app2, "secret2")
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
upstream: {api: %s, wecom: %s, timeout: 2s}
refresh: {min_force_interval: 1s, jitter: 0.00001}
credentials:%s%s%s
clients:
  - {name: e2e, key: %s, allow: ["*"]}
%s`, t.TempDir(), srv.URL, srv.URL, mpCredentials, platformCredentials(), extraCredentials, clientKey, adminsYAML)
	n := startNode(t, yaml)
	fake.SetPushTarget(platformComp.AppID, "http://"+n.addr()+"/callback/component/plat", nil)
	getToken(t, n.addr(), "plat")
	for _, a := range authorizers {
		if _, err := fake.Authorize(t.Context(), platformComp.AppID, a); err != nil {
			t.Fatalf("authorize %s: %v", a, err)
		}
		getToken(t, n.addr(), "plat/"+a)
	}
	return n.addr(), srv.URL, fake
}

type authorizerPage struct {
	Authorizers []struct {
		ID, Kind, Source, State string
		ExpiresAt               string `json:"expires_at"`
	}
	Matched int
	Next    string
}

func (p authorizerPage) ids() []string {
	var out []string
	for _, a := range p.Authorizers {
		out = append(out, a.ID)
	}
	return out
}

// TestAdminPlatforms lists the third-party platform with its ticket's
// age and its authorizers, searches and pages through them, and lists
// WeChat's hosts; each bad request is refused with 400 or 404.
func TestAdminPlatforms(t *testing.T) {
	auths := []string{"wxauth03", "wxauth01", "wxother9", "wxauth02", "wxauth05", "wxauth04"}
	addr, up, _ := platformNode(t, "", auths...)

	var pl struct {
		Platforms []struct {
			ID          string `json:"id"`
			Component   string `json:"component_appid"`
			Received    string `json:"ticket_received_at"`
			Age         *int64 `json:"ticket_age_seconds"`
			Authorizers int
		}
	}
	if st := adminCall(t, addr, "GET", "/v1/admin/platforms", viewerKey, "", &pl); st != 200 || len(pl.Platforms) != 1 {
		t.Fatalf("platforms: %d %+v", st, pl)
	}
	p := pl.Platforms[0]
	if p.ID != "plat" || p.Component != platformComp.AppID || p.Authorizers != len(auths) {
		t.Errorf("platform %+v, want plat, %s, %d authorizers", p, platformComp.AppID, len(auths))
	}
	if p.Received == "" || p.Age == nil || *p.Age < 0 || *p.Age > 60 {
		t.Errorf("ticket received %q, age %v: want the ticket pushed at start", p.Received, p.Age)
	}

	// Every authorizer, a page of two at a time, in appid order.
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(auths) {
			t.Fatalf("paging does not end: %v", got)
		}
		var page authorizerPage
		if st := adminCall(t, addr, "GET", "/v1/admin/platforms/plat/authorizers?limit=2&after="+after, viewerKey, "", &page); st != 200 {
			t.Fatalf("page after %q: %d", after, st)
		}
		if page.Matched != len(auths) {
			t.Errorf("matched %d, want %d", page.Matched, len(auths))
		}
		for _, a := range page.Authorizers {
			if a.Source != "authorizer" || a.State != "ok" || a.ExpiresAt == "" || a.Kind == "" {
				t.Errorf("authorizer %+v: want source authorizer, state ok, a token", a)
			}
		}
		got = append(got, page.ids()...)
		if page.Next == "" {
			break
		}
		if want := strings.TrimPrefix(got[len(got)-1], "plat/"); page.Next != want {
			t.Fatalf("next %q, want the page's last appid %q", page.Next, want)
		}
		after = page.Next
	}
	want := []string{}
	for _, a := range auths {
		want = append(want, "plat/"+a)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("paged authorizers %v, want %v", got, want)
	}

	// Search: a part of the appid, in any case.
	var page authorizerPage
	if st := adminCall(t, addr, "GET", "/v1/admin/platforms/plat/authorizers?q=AUTH0&limit=3", viewerKey, "", &page); st != 200 ||
		page.Matched != 5 || len(page.Authorizers) != 3 || page.Next != "wxauth03" {
		t.Errorf("q=AUTH0: %d, matched %d, %v, next %q; want 5 matched, the first 3, next wxauth03", st, page.Matched, page.ids(), page.Next)
	}
	if adminCall(t, addr, "GET", "/v1/admin/platforms/plat/authorizers?q=other", viewerKey, "", &page); !slices.Equal(page.ids(), []string{"plat/wxother9"}) || page.Next != "" {
		t.Errorf("q=other: %v next %q", page.ids(), page.Next)
	}
	if adminCall(t, addr, "GET", "/v1/admin/platforms/plat/authorizers?q=nobody", viewerKey, "", &page); page.Matched != 0 || len(page.Authorizers) != 0 {
		t.Errorf("q=nobody: %+v", page)
	}

	// Authorizers stay off the credential list: they are many.
	for id := range listAdminCredentials(t, addr) {
		if strings.HasPrefix(id, "plat/") {
			t.Errorf("credential list shows authorizer %s", id)
		}
	}

	var ups struct {
		Upstreams []struct {
			URL             string
			Active, Healthy bool
		}
	}
	if st := adminCall(t, addr, "GET", "/v1/admin/upstreams", viewerKey, "", &ups); st != 200 || len(ups.Upstreams) != 1 ||
		ups.Upstreams[0].URL != up || !ups.Upstreams[0].Active || !ups.Upstreams[0].Healthy {
		t.Errorf("upstreams: %d %+v, want %s active and healthy", st, ups, up)
	}

	for _, bad := range []struct {
		path string
		key  string
		want int
	}{
		{"/v1/admin/platforms/plat/authorizers?limit=0", viewerKey, 400},
		{"/v1/admin/platforms/plat/authorizers?limit=1001", viewerKey, 400},
		{"/v1/admin/platforms/plat/authorizers?limit=x", viewerKey, 400},
		{"/v1/admin/platforms/plat/authorizers?q=a%20b", viewerKey, 400},
		{"/v1/admin/platforms/plat/authorizers?q=" + strings.Repeat("a", 65), viewerKey, 400},
		{"/v1/admin/platforms/plat/authorizers?after=../wx", viewerKey, 400},
		{"/v1/admin/platforms/wx1/authorizers", viewerKey, 404},
		{"/v1/admin/platforms/nope/authorizers", viewerKey, 404},
		{"/v1/admin/platforms", "", 401},
		{"/v1/admin/platforms/plat/authorizers", clientKey, 401},
		{"/v1/admin/upstreams", "not-an-admin-key-at-all", 401},
	} {
		if st := adminCall(t, addr, "GET", bad.path, bad.key, "", nil); st != bad.want {
			t.Errorf("GET %s: %d, want %d", bad.path, st, bad.want)
		}
	}
	if st := adminCall(t, addr, "POST", "/v1/admin/platforms", rootKey, "{}", nil); st != 405 && st != 404 {
		t.Errorf("POST /v1/admin/platforms: %d, want 404 or 405", st)
	}
}
