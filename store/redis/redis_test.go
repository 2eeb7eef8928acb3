package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/storetest"
)

// prefixes numbers the key prefixes tests use, so that each subtest on a
// shared server starts from an empty store.
var prefixes atomic.Int64

func freshPrefix() string { return fmt.Sprintf("test%d:", prefixes.Add(1)) }

// testLogger attaches a Store's log lines to the test that made it.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// open opens a Store on srv with prefix, closed with the test.
func open(t *testing.T, srv *redistest.Server, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Addrs: []string{srv.Addr()}, KeyPrefix: prefix, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, srv, freshPrefix()) })
}

func TestShared(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		p := freshPrefix()
		return open(t, srv, p), open(t, srv, p)
	})
}

// TestKeyPrefixesIndependent checks that deployments sharing a server with
// different prefixes see neither each other's values, leases nor writes.
func TestKeyPrefixesIndependent(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	a, b := open(t, srv, "one:"), open(t, srv, "two:")
	ctx := t.Context()
	ch, err := b.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "tok/x", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "tok/x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b.Get of a's key error = %v, want ErrNotFound", err)
	}
	if keys, _ := b.List(ctx, ""); len(keys) != 0 {
		t.Fatalf("b.List = %v, want none of a's keys", keys)
	}
	l, err := a.Lock(ctx, "cred", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	lb, err := b.Lock(ctx, "cred", time.Minute)
	if err != nil {
		t.Fatalf("b.Lock of a name a holds: %v", err)
	}
	lb.Unlock(ctx)
	if _, err := b.Put(ctx, "tok/y", nil, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-ch:
		if k != "tok/y" {
			t.Fatalf("b's watch delivered %q, want only b's own tok/y", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}

// TestListGlobCharacters checks that a prefix with SCAN's wildcard
// characters matches literally.
func TestListGlobCharacters(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := open(t, srv, "g[l]o*b?:")
	ctx := t.Context()
	for _, k := range []string{`a*`, `a*b`, `ab`, `a?`, `a[x]`, `ax`, `a\`, `a\b`} {
		if _, err := s.Put(ctx, k, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ prefix, want string }{
		{`a*`, `a* a*b`},
		{`a?`, `a?`},
		{`a[x]`, `a[x]`},
		{`a\`, `a\ a\b`},
		{``, `a* a*b a? a[x] a\ a\b ab ax`},
	}
	for _, tt := range tests {
		got, err := s.List(ctx, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("List(%q) = %v, want %s", tt.prefix, got, tt.want)
		}
	}
}

func TestOpenRefusesNoPersistence(t *testing.T) {
	srv := redistest.New(t, redistest.Options{NoAppendOnly: true})
	cfg := Config{Addrs: []string{srv.Addr()}}
	_, err := Open(t.Context(), cfg)
	if !errors.Is(err, ErrNoPersistence) {
		t.Fatalf("Open(appendonly no) error = %v, want ErrNoPersistence", err)
	}
	for _, want := range []string{"appendonly yes", "AllowNoPersistence"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}

	cfg.AllowNoPersistence = true
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(appendonly no, AllowNoPersistence): %v", err)
	}
	s.Close()
}

// TestOpenWithoutConfig checks the advice given when CONFIG is disabled,
// as on managed services.
func TestOpenWithoutConfig(t *testing.T) {
	srv := redistest.New(t, redistest.Options{Args: []string{"--rename-command", "CONFIG", ""}})
	cfg := Config{Addrs: []string{srv.Addr()}}
	_, err := Open(t.Context(), cfg)
	if !errors.Is(err, ErrNoPersistence) || !strings.Contains(err.Error(), "AllowNoPersistence") {
		t.Fatalf("Open(no CONFIG) error = %v, want ErrNoPersistence naming AllowNoPersistence", err)
	}
	cfg.AllowNoPersistence = true
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(no CONFIG, AllowNoPersistence): %v", err)
	}
	s.Close()
}

func TestOpenUnreachable(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	srv.Stop()
	if _, err := Open(t.Context(), Config{Addrs: []string{srv.Addr()}}); err == nil {
		t.Fatal("Open of a stopped server succeeded")
	}
}

func TestConfig(t *testing.T) {
	c := Config{Addrs: []string{"r:6379"}, Username: "u", Password: "hunter2"}
	for _, s := range []string{c.String(), c.LogValue().String(), fmt.Sprint(c), fmt.Sprintf("%+v", c)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("config printed with its password: %s", s)
		}
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Addrs"},
		{Config{Addrs: []string{"a:1", "b:1"}, DB: 2}, "DB"},
		{Config{Addrs: []string{"a:1"}, Cluster: true, DB: 1}, "DB"},
	}
	for _, tt := range bad {
		if _, err := Open(t.Context(), tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%v) error = %v, want one naming %s", tt.cfg, err, tt.want)
		}
	}
}
