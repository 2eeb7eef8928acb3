package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
)

// manyTokens holds a platform's authorizers, each with a jsapi ticket,
// as the token manager lists them: sorted ids.
type manyTokens struct {
	ids   []string
	snaps map[string]*token.Snapshot
}

func newManyTokens(platform string, n int) *manyTokens {
	m := &manyTokens{snaps: map[string]*token.Snapshot{}}
	now := time.Now()
	add := func(id, owner, kind string) {
		m.ids = append(m.ids, id)
		m.snaps[id] = &token.Snapshot{ID: id, Kind: kind, Owner: owner, Token: "t", IssuedAt: now,
			ExpiresAt: now.Add(2 * time.Hour), ServeUntil: now.Add(time.Hour), NextRefresh: now.Add(time.Hour)}
	}
	add(platform, "", "component")
	for i := range n {
		id := fmt.Sprintf("%s/wx%016d", platform, i)
		add(id, platform, "authorizer")
		add(id+"/tickets/jsapi", platform, "ticket")
	}
	slices.Sort(m.ids)
	return m
}

func (m *manyTokens) IDs() []string { return m.ids }
func (m *manyTokens) Snapshot(id string) (*token.Snapshot, error) {
	if s, ok := m.snaps[id]; ok {
		return s, nil
	}
	return nil, token.ErrUnknown
}
func (m *manyTokens) Refresh(context.Context, string) (*token.Snapshot, error) {
	return nil, token.ErrUnknown
}
func (m *manyTokens) Unblock(context.Context, string) (*token.Snapshot, error) {
	return nil, token.ErrUnknown
}
func (m *manyTokens) Add(context.Context, token.Credential, *token.Seed) error { return nil }
func (m *manyTokens) Remove(string) error                                      { return nil }

type fixedPlatform struct{ received time.Time }

func (fixedPlatform) AppID() string                             { return "wxcomponent" }
func (fixedPlatform) Kind() string                              { return "component" }
func (fixedPlatform) TicketGap(context.Context) (string, error) { return "", nil }
func (p fixedPlatform) TicketReceived(context.Context) (time.Time, error) {
	return p.received, nil
}

const benchKey = "bench-admin-key-0123456789"

func manyAuthorizers(tb testing.TB, n int) http.Handler {
	tb.Helper()
	a, err := New(Config{Store: memory.New(), Tokens: newManyTokens("plat", n),
		Build:      func(config.Credential) (Built, error) { return Built{}, nil },
		File:       &config.Config{Admins: []config.Admin{{Name: "b", Key: benchKey, Role: config.RoleViewer}}},
		SetClients: func([]Client) {},
		Platforms:  map[string]Platform{"plat": fixedPlatform{time.Now().Add(-time.Minute)}}})
	if err != nil {
		tb.Fatal(err)
	}
	return a.Handler()
}

func get(tb testing.TB, h http.Handler, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+benchKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		tb.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkAuthorizers measures what the dashboard asks every 5 seconds
// of a platform with 100,000 authorizers (and their tickets): the
// platform list, which counts them, and a page of 20, plain and searched.
func BenchmarkAuthorizers(b *testing.B) {
	h := manyAuthorizers(b, 100_000)
	for _, path := range []string{
		"/v1/admin/platforms",
		"/v1/admin/platforms/plat/authorizers?limit=20",
		"/v1/admin/platforms/plat/authorizers?limit=20&after=wx0000000000050000",
		"/v1/admin/platforms/plat/authorizers?limit=20&q=9999",
	} {
		b.Run(path[len("/v1/admin/"):], func(b *testing.B) {
			for b.Loop() {
				get(b, h, path)
			}
		})
	}
}

func TestAuthorizerRange(t *testing.T) {
	ids := []string{"pla", "pla/wxa", "plat", "plat/wx1", "plat/wx1/tickets/jsapi", "plat/wx2", "plat2", "plat2/wx3", "plat~", "zz"}
	slices.Sort(ids)
	for _, c := range []struct {
		platform string
		want     []string
	}{
		{"plat", []string{"plat/wx1", "plat/wx2"}},
		{"pla", []string{"pla/wxa"}},
		{"plat2", []string{"plat2/wx3"}},
		{"none", nil},
	} {
		var got []string
		for _, id := range authorizerRange(ids, c.platform) {
			if isAuthorizer(id, c.platform) {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, c.want) || countAuthorizers(ids, c.platform) != len(c.want) {
			t.Errorf("%s: %v (count %d), want %v", c.platform, got, countAuthorizers(ids, c.platform), c.want)
		}
	}
}

// TestAuthorizerPages pages through 1,000 authorizers (and their
// tickets) 300 at a time, and searches them.
func TestAuthorizerPages(t *testing.T) {
	h := manyAuthorizers(t, 1000)
	var page struct {
		Authorizers []struct{ ID, Source string }
		Matched     int
		Next        string
	}
	seen := 0
	for after, pages := "", 0; ; pages++ {
		rec := get(t, h, "/v1/admin/platforms/plat/authorizers?limit=300&after="+after)
		page.Next = ""
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Authorizers {
			if want := fmt.Sprintf("plat/wx%016d", seen); a.ID != want || a.Source != "authorizer" {
				t.Fatalf("authorizer %d: %+v, want %s", seen, a, want)
			}
			seen++
		}
		if page.Matched != 1000 || pages > 4 {
			t.Fatalf("page %d: matched %d, next %q", pages, page.Matched, page.Next)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if seen != 1000 {
		t.Errorf("paged through %d authorizers, want 1000", seen)
	}
	rec := get(t, h, "/v1/admin/platforms/plat/authorizers?q=00000099&limit=5")
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	// 99, and 990 to 999: the first five end at 993.
	if page.Matched != 11 || len(page.Authorizers) != 5 || page.Next != "wx0000000000000993" {
		t.Errorf("q=00000099: matched %d, %d shown, next %q; want 11, 5, wx0000000000000993", page.Matched, len(page.Authorizers), page.Next)
	}
}
