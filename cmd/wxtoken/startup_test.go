package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/wxtest"
)

// serveWith writes yaml to a file and runs "wxtoken serve" on it, as the
// binary's main does: an error here is a message and exit status 1. A
// panic fails the test.
func serveWith(t *testing.T, yaml string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wxtoken.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WX1_SECRET", "secret1")
	t.Setenv("WX2_SECRET", "secret2")
	var stdout, stderr bytes.Buffer
	return run(t.Context(), []string{"serve", "--config", path}, &stdout, &stderr)
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServeStoreFailsToOpen: a store that cannot be opened stops serve
// with an error that says why, and nothing else breaks.
func TestServeStoreFailsToOpen(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})

	t.Run("data_dir in use", func(t *testing.T) {
		dir := t.TempDir()
		first := startMain(t, dir, up, 0)
		defer first.Close()
		before := getToken(t, first.Addr(), "wx1")
		err := serveWith(t, configYAML(dir, "127.0.0.1:0", up, 0))
		if err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Fatalf("second serve on %s: %v; want an error saying it is in use", dir, err)
		}
		if after := getToken(t, first.Addr(), "wx1"); after.AccessToken != before.AccessToken {
			t.Error("the first server's token changed")
		}
	})

	t.Run("data_dir cannot be created", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(file, "data") // under a file: no permission bits help root here
		err := serveWith(t, configYAML(dir, "127.0.0.1:0", up, 0))
		if err == nil || !strings.Contains(err.Error(), "create data directory") {
			t.Fatalf("serve with data_dir %s: %v; want an error about creating it", dir, err)
		}
	})

	t.Run("redis unreachable", func(t *testing.T) {
		addr := closedAddr(t)
		before := fake.Stats(app1).ClassicCalls
		yaml := fmt.Sprintf(`listen: 127.0.0.1:0
store: {type: redis, addrs: ["%s"]}
upstream: {api: %s, timeout: 2s}
credentials:
  - {id: wx1, kind: mp, appid: %s, secret: secret1, mode: classic}
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, addr, up, app1, clientKey)
		err := serveWith(t, yaml)
		if err == nil || !strings.Contains(err.Error(), "redis") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("serve with Redis at %s down: %v; want an error naming Redis and the address", addr, err)
		}
		if calls := fake.Stats(app1).ClassicCalls - before; calls != 0 {
			t.Errorf("fetches with no store = %d, want 0", calls)
		}
	})
}

// TestServeAddressInUse: when the API's address is taken, serve fails
// before it has called WeChat or created its data file.
func TestServeAddressInUse(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "data")
	err = serveWith(t, configYAML(dir, taken.Addr().String(), up, 0))
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("serve on a taken address: %v; want an error naming the address in use", err)
	}
	if s1, s2 := fake.Stats(app1), fake.Stats(app2); s1.ClassicCalls+s2.StableCalls != 0 {
		t.Errorf("fetches = %d classic, %d stable; want none", s1.ClassicCalls, s2.StableCalls)
	}
	if _, err := os.Stat(filepath.Join(dir, bolt.FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data file: %v; want it not created", err)
	}
}

// TestServeRefusesPlaceholderIDs: the README's placeholder appid is
// refused at start, naming the field, and never sent to WeChat.
func TestServeRefusesPlaceholderIDs(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	yaml := strings.Replace(configYAML(t.TempDir(), "127.0.0.1:0", up, 0), app1, "wx...", 1)
	err := serveWith(t, yaml)
	if err == nil || !strings.Contains(err.Error(), `credentials[0] (wx1).appid: want wx and 16 lowercase hex digits`) {
		t.Fatalf("serve with appid wx...: %v; want the field named", err)
	}
	if s1, s2 := fake.Stats("wx..."), fake.Stats(app2); s1.ClassicCalls+s2.StableCalls != 0 {
		t.Errorf("fetches = %d classic, %d stable; want none", s1.ClassicCalls, s2.StableCalls)
	}
}
