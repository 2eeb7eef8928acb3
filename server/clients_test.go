package server

import (
	"crypto/sha256"
	"testing"
	"time"
)

// Clients replaced at run time take effect at the next request; a key
// past its Until is refused like an unknown one.
func TestSetClients(t *testing.T) {
	e := newEnv(t)
	const newKey = "new-key-0123456789"
	if r := e.do(t, "GET", "/v1/tokens/hr", newKey, ""); r.status != 401 {
		t.Fatalf("an unknown key: %d %s", r.status, r.body)
	}
	e.api.SetClients([]Client{
		{Name: "new", KeyHash: sha256.Sum256([]byte(newKey)), Allow: []string{"hr"}},
		{Name: "shop", KeyHash: sha256.Sum256([]byte(shopKey)), Allow: []string{"shop"}, Until: time.Now().Add(-time.Second)},
		{Name: "ops", KeyHash: sha256.Sum256([]byte(opsKey)), Allow: []string{"*"}, Until: time.Now().Add(time.Hour)},
	})
	if r := e.do(t, "GET", "/v1/tokens/hr", newKey, ""); r.status != 200 {
		t.Errorf("the added key: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/tokens/shop", newKey, ""); r.status != 403 {
		t.Errorf("the added key, on a credential it is not allowed: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/tokens/shop", shopKey, ""); r.status != 401 {
		t.Errorf("a key past its grace: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/tokens/shop", opsKey, ""); r.status != 200 {
		t.Errorf("a key within its grace: %d %s", r.status, r.body)
	}
	e.api.SetClients(nil)
	if r := e.do(t, "GET", "/v1/tokens/hr", newKey, ""); r.status != 401 {
		t.Errorf("a removed key: %d %s", r.status, r.body)
	}
}
