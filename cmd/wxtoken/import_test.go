package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// Keys of the import test's clients: one allowed only the platform, one
// that may also import, and one that may import and use every authorizer.
const (
	readerKey   = "reader-key-0123456789"
	importerKey = "importer-key-0123456789"
)

// TestImportNeverOverwritesLiveAuthorizer: importing an authorizer that is
// held already, with a refresh token that does not work, must not replace
// the one that does. Before, a client allowed only the platform got
// 200 {"imported":1}, and the authorizer's next refresh got 61023: the
// authorization was lost for good.
func TestImportNeverOverwritesLiveAuthorizer(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	yaml := platformYAML(t.TempDir(), srv.URL) + fmt.Sprintf(`  - {name: reader, key: %s, allow: [plat]}
  - {name: importer, key: %s, allow: [plat], import: [plat]}
`, readerKey, importerKey)
	yaml = strings.Replace(yaml, "allow: [plat, plat/*]}", "allow: [plat, plat/*], import: [plat]}", 1)
	m := runYAML(t, yaml)
	addr := m.Addr()
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
	getToken(t, addr, "plat")
	const auth = "wxauth01"
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, auth); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	getToken(t, addr, auth)

	garbage := `{"authorizers":[{"authorizer_appid":"wxauth01","authorizer_refresh_token":"garbage"}]%s}`
	tests := []struct {
		name, key, body string
		status          int
		want            string // in the answer
	}{
		{"allowed the platform only", readerKey, fmt.Sprintf(garbage, ""), 403, "import permission"},
		{"replace, allowed the platform only", readerKey, fmt.Sprintf(garbage, `,"replace":true`), 403, "import permission"},
		{"import permission, no replace", importerKey, fmt.Sprintf(garbage, ""), 200,
			`"authorizers":[{"authorizer_appid":"wxauth01","result":"skipped_existing"}],"imported":0,"replaced":0,"skipped_existing":1`},
		{"replace, not allowed the authorizer", importerKey, fmt.Sprintf(garbage, `,"replace":true`), 403, "not allowed wxauth01"},
		{"replace needs every authorizer allowed", importerKey,
			`{"replace":true,"authorizers":[{"authorizer_appid":"wxnew01","authorizer_refresh_token":"r"}]}`, 403, "not allowed wxnew01"},
	}
	for _, tt := range tests {
		status, body := importCall(t, addr, tt.key, tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s; want %d with %q", tt.name, status, body, tt.status, tt.want)
		}
	}
	if _, err := m.tokens.Snapshot("wxnew01"); err == nil {
		t.Error("a refused import added an authorizer")
	}
	// The stored refresh token is still the one WeChat issued: a forced
	// refresh works.
	if got, want := storedRefreshToken(t, m, auth), fake.AuthorizerRefreshToken(platformComp.AppID, auth); got != want {
		t.Fatalf("stored refresh token %q after the imports, want WeChat's %q", got, want)
	}
	old := getToken(t, addr, auth).AccessToken
	fake.Expire(auth) // a report of a token WeChat still accepts is answered with it
	fresh := invalidate(t, addr, auth, old)
	if _, err := (&wechat.Client{API: srv.URL}).CallbackIP(t.Context(), fresh); err != nil || fresh == old {
		t.Fatalf("refresh after the refused imports gave %q (was %q): %v", fresh, old, err)
	}

	// A client allowed the authorizer may replace it when it says so, and
	// learns what was replaced and what was new.
	real := fake.AuthorizerRefreshToken(platformComp.AppID, auth)
	status, body := importCall(t, addr, clientKey, fmt.Sprintf(`{"replace":true,"authorizers":[
		{"authorizer_appid":"wxauth01","authorizer_refresh_token":%q},
		{"authorizer_appid":"wxnew02","authorizer_refresh_token":"r2"}]}`, real))
	want := `{"authorizers":[{"authorizer_appid":"wxauth01","result":"replaced"},{"authorizer_appid":"wxnew02","result":"imported"}],"imported":1,"replaced":1,"skipped_existing":0}`
	if status != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("replace by a client allowed plat/*: %d %s; want 200 %s", status, body, want)
	}
}

// importCall posts body to the platform's import endpoint with key.
func importCall(t *testing.T, addr, key, body string) (int, string) {
	t.Helper()
	return keyCall(t, addr, "POST", "/v1/components/plat/authorizers", key, body)
}

// invalidate reports stale for id and returns the token answered.
func invalidate(t *testing.T, addr, id, stale string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/tokens/"+id+"/invalidate", strings.NewReader(fmt.Sprintf(`{"access_token":%q}`, stale)))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenReply
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &tr) != nil {
		t.Fatalf("invalidate %s: %d %s", id, resp.StatusCode, b)
	}
	return tr.AccessToken
}

// storedRefreshToken reads the refresh token of plat's authorizer appid
// from m's store.
func storedRefreshToken(t *testing.T, m *Main, appid string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ent, err := m.store.Get(ctx, "token/plat/"+appid)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := token.DecodeStored(ent.Value)
	if err != nil {
		t.Fatal(err)
	}
	return rec.State
}
