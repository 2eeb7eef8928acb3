package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/metrics"
	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/sealed"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// Secrets at rest: these tests run wxtoken with a master key in a key
// file (store.master_key_file), so that instances of one test can hold
// different keys; the environment variables are read the same way.

// keyFile writes keys (base64, the primary first) to a new key file.
func keyFile(t *testing.T, keys ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte("# wxtoken master key\n"+strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sealYAML is wx1 (classic) and the platform plat on the store given as
// a YAML flow mapping.
func sealYAML(storeYAML, dataDir, up string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
store: %s
upstream: {api: %s, api_failover: [], timeout: 2s}
credentials:%s
  - id: plat
    kind: component
    component_appid: %s
    secret: %s
    token: %s
    encoding_aes_key: %s
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, dataDir, storeYAML, up, classicOnly, platformComp.AppID, platformComp.Secret, platformComp.Token, platformComp.EncodingAESKey, clientKey)
}

// boltStore is the store section of a bolt store sealed with the key
// file (none: plain).
func boltStore(keyFile string) string {
	if keyFile == "" {
		return "{type: bolt}"
	}
	return fmt.Sprintf("{type: bolt, master_key_file: %s}", keyFile)
}

// startYAML runs wxtoken on yaml, or returns the error its start met.
func startYAML(t *testing.T, yaml string) (*Main, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if err := m.Run(t.Context()); err != nil {
		return nil, err
	}
	return m, nil
}

// sealFake is the fake WeChat with app1 and the platform.
func sealFake(t *testing.T) (*wxtest.Fake, string) {
	t.Helper()
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(app1, "secret1")
	fake.AddComponent(platformComp)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })
	return fake, srv.URL
}

// secrets are what the store of a running platform holds that must not
// be readable without the key: tokens, the authorizer's refresh token,
// the pushed ticket.
type secrets map[string]string

// platformSecrets drives m's platform until its store holds every kind of
// secret, and returns them by name.
func platformSecrets(t *testing.T, fake *wxtest.Fake, m *Main) secrets {
	t.Helper()
	fake.SetPushTarget(platformComp.AppID, "http://"+m.Addr()+"/callback/component/plat", nil)
	s := secrets{"wx1 token": getToken(t, m.Addr(), "wx1").AccessToken,
		"component token": getToken(t, m.Addr(), "plat").AccessToken}
	if _, err := fake.Authorize(t.Context(), platformComp.AppID, "wxauth01"); err != nil {
		t.Fatalf("authorize: %v", err)
	}
	s["authorizer token"] = getToken(t, m.Addr(), "wxauth01").AccessToken
	s["refresh token"] = fake.AuthorizerRefreshToken(platformComp.AppID, "wxauth01")
	// The last push, so that the stored ticket is this one.
	ticket, err := fake.PushTicket(t.Context(), platformComp.AppID)
	if err != nil {
		t.Fatalf("push ticket: %v", err)
	}
	s["ticket"] = ticket
	for name, v := range s {
		if len(v) < 16 {
			t.Fatalf("%s %q: too short to look for", name, v)
		}
	}
	return s
}

// found returns the names of the secrets that occur in data.
func (s secrets) found(data []byte) []string {
	var out []string
	for name, v := range s {
		if bytes.Contains(data, []byte(v)) {
			out = append(out, name)
		}
	}
	return out
}

// filesUnder is the content of every file under dir.
func filesUnder(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestBoltSealedAtRest: a plain bolt store, with real tokens, a refresh
// token and a ticket in it, is sealed on the first start with a key; the
// server keeps serving the same tokens without a fetch, and afterwards
// the file holds none of them. The file of the plain store shows that
// the search finds them when they are there.
func TestBoltSealedAtRest(t *testing.T) {
	fake, up := sealFake(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	m, err := startYAML(t, sealYAML(boltStore(""), data, up))
	if err != nil {
		t.Fatal(err)
	}
	sec := platformSecrets(t, fake, m)
	m.Close()
	file := filepath.Join(data, bolt.FileName)
	raw, _ := os.ReadFile(file)
	if got := sec.found(raw); len(got) != len(sec) {
		t.Fatalf("the plain store shows %v of %d secrets: the search does not work", got, len(sec))
	}
	if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("store file mode %v, want 0600", fi.Mode().Perm())
	}

	key := sealed.NewKey()
	calls := func() [3]int {
		return [3]int{fake.Stats(app1).ClassicCalls, fake.Stats(platformComp.AppID).ComponentTokenCalls, fake.Stats("wxauth01").AuthorizerTokenCalls}
	}
	before := calls()
	m, err = startYAML(t, sealYAML(boltStore(keyFile(t, key)), data, up))
	if err != nil {
		t.Fatal(err)
	}
	for id, name := range map[string]string{"wx1": "wx1 token", "plat": "component token", "wxauth01": "authorizer token"} {
		if got := getToken(t, m.Addr(), id).AccessToken; got != sec[name] {
			t.Errorf("after sealing, %s = %q, want the stored %q", id, got, sec[name])
		}
	}
	<-sealedStore(m).Done()
	if after := calls(); after != before {
		t.Errorf("sealing the store fetched: calls %v, then %v", before, after)
	}
	m.Close()
	raw, _ = os.ReadFile(file)
	if got := sec.found(raw); len(got) > 0 {
		t.Fatalf("the sealed store file shows %v", got)
	}
	for _, s := range []string{"secret1", platformComp.Secret} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("the store file shows an AppSecret")
		}
	}

	// The sealed store runs again with its key and refuses to run without.
	m, err = startYAML(t, sealYAML(boltStore(keyFile(t, key)), data, up))
	if err != nil {
		t.Fatalf("restart with the key: %v", err)
	}
	if got := getToken(t, m.Addr(), "wx1").AccessToken; got != sec["wx1 token"] {
		t.Errorf("after a restart, wx1 = %q, want %q", got, sec["wx1 token"])
	}
	m.Close()
	if _, err := startYAML(t, sealYAML(boltStore(""), data, up)); !errors.Is(err, sealed.ErrNoKey) || !strings.Contains(err.Error(), envMasterKey) {
		t.Fatalf("start of a sealed store without a key: %v; want ErrNoKey naming %s", err, envMasterKey)
	}
}

// TestWrongKeyRefused: a store sealed under one key refuses to start
// under another, naming both key ids and neither key, and a value altered
// in the file stops the start with an error rather than serving garbage.
func TestWrongKeyRefused(t *testing.T) {
	_, up := sealFake(t)
	data := filepath.Join(t.TempDir(), "data")
	k1, k2 := sealed.NewKey(), sealed.NewKey()
	m, err := startYAML(t, sealYAML(boltStore(keyFile(t, k1)), data, up))
	if err != nil {
		t.Fatal(err)
	}
	getToken(t, m.Addr(), "wx1")
	m.Close()

	_, err = startYAML(t, sealYAML(boltStore(keyFile(t, k2)), data, up))
	if !errors.Is(err, sealed.ErrUnknownKey) {
		t.Fatalf("start under another key: %v, want ErrUnknownKey", err)
	}
	r1, _ := sealed.ParseKeyring(k1, "")
	r2, _ := sealed.ParseKeyring(k2, "")
	if msg := err.Error(); !strings.Contains(msg, r1.ID()) || !strings.Contains(msg, r2.ID()) || strings.Contains(msg, k1) || strings.Contains(msg, k2) {
		t.Fatalf("error %q: want both key ids and no key", msg)
	}
	if _, err := os.Stat(filepath.Join(data, bolt.FileName)); err != nil {
		t.Fatal(err)
	}

	// Alter one byte of wx1's sealed record.
	st, err := bolt.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := st.Get(t.Context(), "token/wx1")
	if err != nil {
		t.Fatal(err)
	}
	e.Value[len(e.Value)-1] ^= 1
	st.Put(t.Context(), "token/wx1", e.Value, e.Version)
	st.Close()
	if _, err := startYAML(t, sealYAML(boltStore(keyFile(t, k1)), data, up)); !errors.Is(err, sealed.ErrAuth) || !strings.Contains(err.Error(), "token/wx1") {
		t.Fatalf("start with an altered record: %v; want ErrAuth naming token/wx1", err)
	}
}

// TestMasterKeys: the keyring comes from the environment or the key file,
// not both, and no error repeats a key.
func TestMasterKeys(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"keygen"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out.String())
	if _, err := sealed.ParseKey(key); err != nil {
		t.Fatalf("keygen printed %q: %v", key, err)
	}
	file := keyFile(t, key)
	bad := "c2hvcnQ=" // "short"
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	cases := []struct {
		name    string
		file    string
		env     func(string) (string, bool)
		wantErr string // "" : a keyring; "none": no keyring
	}{
		{"nothing", "", env(), "none"},
		{"env", "", env(envMasterKey, key), ""},
		{"env with previous", "", env(envMasterKey, key, envMasterKeyPrevious, sealed.NewKey()+","+sealed.NewKey()), ""},
		{"file", file, env(), ""},
		{"both", file, env(envMasterKey, key), "both set"},
		{"previous alone", "", env(envMasterKeyPrevious, key), "without"},
		{"bad env key", "", env(envMasterKey, bad), "bytes"},
		{"bad previous key", "", env(envMasterKey, key, envMasterKeyPrevious, bad), "previous key 1"},
		{"missing file", filepath.Join(t.TempDir(), "none"), env(), "store.master_key_file"},
		{"bad file", keyFile(t, key, bad), env(), "line 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := masterKeys(config.Store{MasterKeyFile: c.file}, c.env)
			switch c.wantErr {
			case "":
				if err != nil || r == nil {
					t.Fatalf("masterKeys = %v, %v; want a keyring", r, err)
				}
			case "none":
				if err != nil || r != nil {
					t.Fatalf("masterKeys = %v, %v; want none", r, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("masterKeys error = %v, want one saying %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), bad) {
					t.Fatalf("error %q repeats a key", err)
				}
			}
		})
	}
}

// redisSealYAML is mpCredentials on the shared Redis at addr under
// prefix, sealed with the key file (none: plain), with a 1 s refresh
// margin for the fake's short-lived tokens.
func redisSealYAML(addr, prefix, keyFile, up string) string {
	keyLine := ""
	if keyFile != "" {
		keyLine = ", master_key_file: " + keyFile
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
store: {type: redis, addrs: ["%s"], key_prefix: "%s"%s}
upstream: {api: %s, wecom: %s, api_failover: [], timeout: 2s}
refresh: {min_force_interval: 1s}
credentials:%s
clients:
  - {name: e2e, key: %s, allow: ["*"]}
`, addr, prefix, keyLine, up, up, mpCredentials, clientKey)
}

// redisRaw reads every value under prefix with a client of its own, as
// someone holding a copy of the Redis would.
func redisRaw(t *testing.T, addr, prefix string) []byte {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rc.Close()
	ctx := t.Context()
	var all []byte
	iter := rc.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		all = append(all, k...)
		if typ, _ := rc.Type(ctx, k).Result(); typ != "hash" {
			v, _ := rc.Get(ctx, k).Bytes()
			all = append(all, v...)
			continue
		}
		h, err := rc.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range h {
			all = append(all, f...)
			all = append(all, v...)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return all
}

// TestRedisSealedAtRest: the tokens of a sealed deployment appear neither
// in what a client reads from Redis nor in its append-only file, where
// those of a plain deployment on the same server do.
func TestRedisSealedAtRest(t *testing.T) {
	// Each deployment its own fake: a stable token is shared by whoever
	// asks for it.
	_, plainUp := upstream(t, wxtest.Config{})
	_, up := upstream(t, wxtest.Config{})
	srv := redistest.New(t, redistest.Options{})
	plain := startNode(t, redisSealYAML(srv.Addr(), "plain:", "", plainUp))
	plainTok := secrets{"plain wx1": getToken(t, plain.addr(), "wx1").AccessToken, "plain wx2": getToken(t, plain.addr(), "wx2").AccessToken}
	plain.stop()

	file := keyFile(t, sealed.NewKey())
	a := startNode(t, redisSealYAML(srv.Addr(), "wxtoken:", file, up))
	b := startNode(t, redisSealYAML(srv.Addr(), "wxtoken:", file, up))
	sec := secrets{"wx1": getToken(t, a.addr(), "wx1").AccessToken, "wx2": getToken(t, b.addr(), "wx2").AccessToken}
	if got := getToken(t, b.addr(), "wx1").AccessToken; got != sec["wx1"] {
		t.Fatalf("instance b serves wx1 %q, a %q", got, sec["wx1"])
	}
	raw := redisRaw(t, srv.Addr(), "")
	if got := plainTok.found(raw); len(got) != 2 {
		t.Fatalf("reading Redis shows %v of the plain deployment's tokens: the search does not work", got)
	}
	if !bytes.Contains(raw, []byte("token/wx1")) {
		t.Fatal("reading Redis shows no record of the sealed deployment")
	}
	if got := sec.found(raw); len(got) > 0 {
		t.Fatalf("reading Redis shows the sealed deployment's %v", got)
	}
	aof := filesUnder(t, srv.Dir())
	if got := plainTok.found(aof); len(got) != 2 {
		t.Fatalf("the append-only file shows %v of the plain deployment's tokens: the search does not work", got)
	}
	if got := sec.found(aof); len(got) > 0 {
		t.Fatalf("the append-only file shows the sealed deployment's %v", got)
	}
}

// TestRekeyUnderLoad: two instances share a Redis, both holding an old
// and a new key. While clients read tokens from both without a pause and
// the tokens are refreshed every few seconds, "wxtoken rekey" seals the
// store again and again, alternately under each key. No request fails,
// no served token is dead, and when the passes end under the new key the
// instances restart with that key alone and serve the same tokens
// without a fetch.
func TestRekeyUnderLoad(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{Lifetime: 5 * time.Second, Overlap: 2 * time.Second, StableRenewBefore: stableRenewBefore})
	srv := redistest.New(t, redistest.Options{})
	oldKey, newKey := sealed.NewKey(), sealed.NewKey()
	oldFirst, newFirst := keyFile(t, oldKey, newKey), keyFile(t, newKey, oldKey)
	nodes := []*node{
		startNode(t, redisSealYAML(srv.Addr(), "wxtoken:", keyFile(t, oldKey), up)),
	}
	getToken(t, nodes[0].addr(), "wx1")
	getToken(t, nodes[0].addr(), "wx2")
	nodes[0].stop()
	lost := &lineCounter{w: t.Output(), match: "lost a write race"}
	nodes = []*node{
		startLoggedNode(t, redisSealYAML(srv.Addr(), "wxtoken:", oldFirst, up), lost),
		startLoggedNode(t, redisSealYAML(srv.Addr(), "wxtoken:", oldFirst, up), lost),
	}
	// Slow fetches hold each refresh's compare-and-swap open for long,
	// so that passes land inside it.
	fake.SetFault("", wxtest.Fault{Delay: 300 * time.Millisecond})
	wc := &wechat.Client{API: up}
	hc := newHTTPClient(t)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	for _, n := range nodes {
		for _, id := range []string{"wx1", "wx2"} {
			wg.Go(func() {
				for ctx.Err() == nil {
					status, tr, err := askToken(ctx, hc, n.addr(), id)
					if ctx.Err() != nil {
						return
					}
					if err != nil || status != http.StatusOK {
						failed.Add(1)
						t.Errorf("GET %s from %s: %d, %v", id, n.addr(), status, err)
						continue
					}
					if _, err := wc.CallbackIP(ctx, tr.AccessToken); err != nil && ctx.Err() == nil {
						t.Errorf("%s from %s: a dead token served: %v", id, n.addr(), err)
					}
					served.Add(1)
				}
			})
		}
	}
	configFor := func(keys string) string {
		path := filepath.Join(t.TempDir(), "wxtoken.yaml")
		os.WriteFile(path, []byte(redisSealYAML(srv.Addr(), "wxtoken:", keys, up)), 0o600)
		return path
	}
	toNew, toOld := configFor(newFirst), configFor(oldFirst)
	issued := fake.Stats(app1).Issued + fake.Stats(app2).Issued
	passes := 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) || passes%2 == 0; passes++ {
		path := []string{toNew, toOld}[passes%2]
		var out bytes.Buffer
		if err := run(t.Context(), []string{"rekey", "--config", path}, &out, io.Discard); err != nil {
			t.Fatalf("rekey pass %d: %v", passes, err)
		}
		if !strings.Contains(out.String(), "re-sealed") {
			t.Fatalf("rekey printed %q", out.String())
		}
	}
	stop()
	wg.Wait()
	refreshed := fake.Stats(app1).Issued + fake.Stats(app2).Issued - issued
	t.Logf("%d passes, %d tokens served, %d issued meanwhile", passes, served.Load(), refreshed)
	if refreshed == 0 {
		t.Fatal("no token was refreshed during the passes: the test shows nothing")
	}
	if failed.Load() > 0 || fake.Stats(app1).DeadUses+fake.Stats(app2).DeadUses > 0 {
		t.Fatalf("%d failed requests, %d dead uses", failed.Load(), fake.Stats(app1).DeadUses+fake.Stats(app2).DeadUses)
	}
	if n := lost.count.Load(); n > 0 {
		t.Fatalf("%d refreshes lost their write: a pass turned a refresher's compare-and-swap away", n)
	}
	fake.ClearFault("")
	want := map[string]string{"wx1": getToken(t, nodes[0].addr(), "wx1").AccessToken, "wx2": getToken(t, nodes[0].addr(), "wx2").AccessToken}
	calls := fake.Stats(app1).ClassicCalls + fake.Stats(app2).StableCalls
	for _, n := range nodes {
		n.stop()
	}
	only := startNode(t, redisSealYAML(srv.Addr(), "wxtoken:", keyFile(t, newKey), up))
	for id, tok := range want {
		if got := getToken(t, only.addr(), id).AccessToken; got != tok {
			t.Errorf("with the new key alone, %s = %q, want %q", id, got, tok)
		}
	}
	if got := fake.Stats(app1).ClassicCalls + fake.Stats(app2).StableCalls; got != calls {
		t.Errorf("the restart with the new key alone fetched %d times", got-calls)
	}
	if _, err := startYAML(t, redisSealYAML(srv.Addr(), "wxtoken:", keyFile(t, oldKey), up)); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Fatalf("start with the old key alone after the rotation: %v, want ErrUnknownKey", err)
	}
}

// lineCounter passes log output to w and counts the writes containing
// match.
type lineCounter struct {
	w     io.Writer
	match string
	count atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(c.match)) {
		c.count.Add(1)
	}
	return c.w.Write(p)
}

// startLoggedNode is startNode with the instance's log going to w.
func startLoggedNode(t *testing.T, yaml string, w io.Writer) *node {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(w, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := &node{m: m}
	t.Cleanup(n.stop)
	return n
}

// TestRekeyBolt: "wxtoken rekey" seals a stopped bolt instance's plain
// store, and refuses, saying what to do instead, while one runs.
func TestRekeyBolt(t *testing.T) {
	fake, up := sealFake(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	m, err := startYAML(t, sealYAML(boltStore(""), data, up))
	if err != nil {
		t.Fatal(err)
	}
	sec := platformSecrets(t, fake, m)
	key := keyFile(t, sealed.NewKey())
	path := filepath.Join(dir, "wxtoken.yaml")
	os.WriteFile(path, []byte(sealYAML(boltStore(key), data, up)), 0o600)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"rekey", "--config", path}, &out, io.Discard); !errors.Is(err, bolt.ErrInUse) || !strings.Contains(err.Error(), "restart it") {
		t.Fatalf("rekey beside a running bolt instance: %v; want ErrInUse saying to restart it", err)
	}
	m.Close()
	if err := run(t.Context(), []string{"rekey", "--config", path}, &out, io.Discard); err != nil {
		t.Fatalf("rekey: %v", err)
	}
	// wx1, the platform's component and authorizer, the ticket.
	if !strings.Contains(out.String(), "4 values, 4 re-sealed") {
		t.Fatalf("rekey printed %q; want 4 values re-sealed", out.String())
	}
	raw, _ := os.ReadFile(filepath.Join(data, bolt.FileName))
	if got := sec.found(raw); len(got) > 0 {
		t.Fatalf("after rekey the file shows %v", got)
	}
	m, err = startYAML(t, sealYAML(boltStore(key), data, up))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := getToken(t, m.Addr(), "wxauth01").AccessToken; got != sec["authorizer token"] {
		t.Fatalf("after rekey the authorizer's token is %q, want %q", got, sec["authorizer token"])
	}
}

// TestLooseDataDirWarned: a data directory others can read is warned
// about at start.
func TestLooseDataDirWarned(t *testing.T) {
	_, up := sealFake(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755) // whatever the umask
	cfg, err := config.Parse([]byte(sealYAML(boltStore(""), data, up)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	warned := &lineCounter{w: t.Output(), match: "readable by others"}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(warned, nil))}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if warned.count.Load() != 1 {
		t.Fatalf("%d warnings about the data directory's mode 0755, want 1", warned.count.Load())
	}
}

// sealedStore is m's sealed store, under the metrics' wrapper.
func sealedStore(m *Main) *sealed.Store {
	return m.store.(*metrics.Store).Store.(*sealed.Store)
}

// TestCheckConfigMasterKey: check-config reports a master key that would
// stop the start, without showing it.
func TestCheckConfigMasterKey(t *testing.T) {
	data := []byte(sealYAML(boltStore(""), t.TempDir(), "http://127.0.0.1:1"))
	bad := "c2hvcnQ=" // "short"
	for _, c := range []struct {
		env     map[string]string
		problem string
	}{
		{map[string]string{}, ""},
		{map[string]string{envMasterKey: sealed.NewKey()}, ""},
		{map[string]string{envMasterKey: bad}, envMasterKey},
		{map[string]string{envMasterKeyPrevious: sealed.NewKey()}, "without"},
	} {
		_, problems := checkConfig(data, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		text := strings.Join(problems, "\n")
		if c.problem == "" && len(problems) > 0 || c.problem != "" && !strings.Contains(text, c.problem) {
			t.Errorf("check-config with %v: problems %q; want one saying %q", slices.Collect(maps.Keys(c.env)), text, c.problem)
		}
		if strings.Contains(text, bad) {
			t.Errorf("check-config shows the key: %q", text)
		}
	}
}

// TestAdminRecordsSealed: what the admin API adds at run time (an
// AppSecret, a client's key hash) is sealed in the file like the tokens
// and tickets it leads to.
func TestAdminRecordsSealed(t *testing.T) {
	fake, up := upstream(t, wxtest.Config{})
	fake.AddApp(app3, secret3)
	data := filepath.Join(t.TempDir(), "data")
	yaml := adminConfig(fmt.Sprintf("data_dir: %s\nstore: %s", data, boltStore(keyFile(t, sealed.NewKey()))), up)
	m, err := startYAML(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	addr := m.Addr()
	body := `{"id":"wx3","kind":"mp","appid":"` + app3 + `","secret":"` + secret3 + `","mode":"classic","tickets":["jsapi"]}`
	if st := adminCall(t, addr, "POST", "/v1/admin/credentials", rootKey, body, nil); st != 201 {
		t.Fatalf("add credential: %d", st)
	}
	var cl struct{ Name, Key string }
	if st := adminCall(t, addr, "POST", "/v1/admin/clients", rootKey, `{"name":"shop","allow":["wx3"]}`, &cl); st != 201 {
		t.Fatalf("add client: %d", st)
	}
	var ticket struct{ Ticket string }
	st, text := keyCall(t, addr, "GET", "/v1/tokens/wx3/tickets/jsapi", clientKey, "")
	if err := json.Unmarshal([]byte(text), &ticket); st != 200 || err != nil {
		t.Fatalf("jsapi ticket: %d %s", st, text)
	}
	sum := sha256.Sum256([]byte(cl.Key))
	sec := secrets{"AppSecret": secret3, "client key": cl.Key, "client key hash": hex.EncodeToString(sum[:]),
		"token": getToken(t, addr, "wx3").AccessToken, "jsapi ticket": ticket.Ticket}
	m.Close()
	raw, err := os.ReadFile(filepath.Join(data, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("admin/")) {
		t.Fatal("the file holds no admin record: the test shows nothing")
	}
	if got := sec.found(raw); len(got) > 0 {
		t.Fatalf("the sealed store file shows %v", got)
	}
}
