package config_test

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	_ "github.com/wxtoken/wxtoken/kind"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const good = `
listen: 127.0.0.1:9000
data_dir: /tmp/x
refresh:
  min_force_interval: 45s
credentials:
  - kind: mp
    appid: wx1234567890abcdef
    secret: ${OA_SECRET}
  - id: hr
    kind: wecom
    corpid: ww1234567890abcdef
    secret: "${HR_SECRET}"
    ` + `
clients:
  - name: shop
    key: ${SHOP_KEY}
    allow: [wx1234567890abcdef]
  - name: ops
    key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    allow: ["*"]
`

func TestParseGood(t *testing.T) {
	c, err := config.Parse([]byte(good), env(map[string]string{
		"OA_SECRET": "s3cr#t: with yaml chars", "HR_SECRET": "hr", "SHOP_KEY": "0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Credentials[0]; got.ID != "wx1234567890abcdef" || got.Mode != config.ModeStable || got.Secret != "s3cr#t: with yaml chars" {
		t.Errorf("credential 0 = %+v; want id defaulted to appid, mode stable, secret expanded verbatim", got)
	}
	if c.Refresh.MinForceInterval != 45*time.Second {
		t.Errorf("min_force_interval = %v, want 45s", c.Refresh.MinForceInterval)
	}
	if c.Upstream.API != "https://api.weixin.qq.com" || len(c.Upstream.APIFailover) != 1 || c.Log.Level != "info" || c.Store.Type != "bolt" {
		t.Errorf("defaults not applied: %+v %+v", c.Upstream, c.Log)
	}
	// A client is recognised by the SHA-256 of the key it presents: the
	// hash of key, or key_sha256 decoded (the file's value is the SHA-256
	// of "test").
	for i, key := range []string{"0123456789abcdef", "test"} {
		if got, want := c.Clients[i].KeyHash(), sha256.Sum256([]byte(key)); got != want {
			t.Errorf("clients[%d] key hash = %x, want SHA-256 of %q = %x", i, got, key, want)
		}
	}
}

func TestParseComponent(t *testing.T) {
	c, err := config.Parse([]byte(componentYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Clients[0].Import; len(got) != 1 || got[0] != "wx00000000000c0001" {
		t.Fatalf("import = %q, want [wx00000000000c0001]", got)
	}
	if c.Credentials[0].ID != "wx00000000000c0001" || c.Callbacks.MaxSkew != 5*time.Minute {
		t.Fatalf("component id = %q, max_skew = %s; want defaults wx00000000000c0001 and 5m", c.Credentials[0].ID, c.Callbacks.MaxSkew)
	}
	// One authorizer is {platform}/{appid}; an appid must look like one.
	bad := strings.Replace(componentYAML, "wx00000000000c0001/wxauth0000000001", "wx00000000000c0001/wx auth", 1)
	if _, err := config.Parse([]byte(bad), env(nil)); err == nil || !strings.Contains(err.Error(), `unknown credential "wx00000000000c0001/wx auth"`) {
		t.Fatalf("allow with a malformed authorizer appid: %v", err)
	}
}

// componentYAML is TestParseComponent's configuration.
const componentYAML = `
credentials:
  - kind: component
    component_appid: wx00000000000c0001
    secret: s
    token: t
    encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
  - kind: mp
    appid: wx0000000000000001
    secret: s
    callback: {token: t}
clients:
  - {name: platform-web, key: 0123456789abcdef, allow: [wx00000000000c0001, wx00000000000c0001/*, wx00000000000c0001/wxauth0000000001], import: [wx00000000000c0001]}
`

func TestParseEmptyIsDefaults(t *testing.T) {
	c, err := config.Parse(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8750" || c.DataDir != "./data" {
		t.Fatalf("empty config = %+v", c)
	}
}

func TestParseBad(t *testing.T) {
	base := func(cred, client string) string {
		return "credentials:\n" + cred + "clients:\n" + client
	}
	okCred := "  - {kind: mp, appid: wx0000000000000001, secret: s}\n"
	okClient := "  - {name: c, key: 0123456789abcdef, allow: [wx0000000000000001]}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"missing env", "credentials:\n  - kind: mp\n    appid: wx0000000000000001\n    secret: ${NOPE}\n", "line 4: environment variable NOPE is not set"},
		{"unknown field", "lisen: x\n", `unknown field "lisen" (line 1)`},
		{"unknown refresh field", "refresh:\n  overlapp: 5m\n", `refresh: unknown field "overlapp" (line 2)`},
		{"unknown credential field", base("  - {kind: mp, appid: wx0000000000000001, scret: s}\n", ""), `credentials[0]: unknown field "scret"`},
		{"unknown callback field", base(okCred+"  - {id: b, kind: mp, appid: wx0000000000000002, secret: s, callback: {tokn: t}}\n", ""), `credentials[1].callback: unknown field "tokn"`},
		{"unknown client field", base(okCred, "  - {name: c, key: 0123456789abcdef, alow: [x]}\n"), `clients[0]: unknown field "alow"`},
		{"listen", "listen: nope\n", "listen: want host:port"},
		{"listen port range", "listen: :99999\n", `listen: port 99999 out of range (0 to 65535)`},
		{"listen no port", "listen: '127.0.0.1:'\n", `listen: want host:port, got "127.0.0.1:"`},
		{"listen bad service", "listen: ':no-such-service'\n", `listen: unknown port "no-such-service"`},
		{"redis addr port range", "store: {type: redis, addrs: ['127.0.0.1:70000']}\n", `store.addrs[0]: port 70000 out of range`},
		{"upstream", "upstream: {api: ftp://x}\n", "upstream.api: want an http(s) URL"},
		{"refresh.at", "refresh: {at: 1.5}\n", "refresh.at"},
		{"refresh.jitter", "refresh: {jitter: 0.7}\n", "refresh.jitter"},
		{"negative duration", "refresh: {max_backoff: -1s}\n", "refresh.max_backoff: must not be negative"},
		{"log level", "log: {level: loud}\n", "log.level"},
		{"kind", base("  - {id: x, kind: oa, appid: wx0000000000000001, secret: s}\n", ""), "credentials[0] (x).kind: want component, mp, provider, suite or wecom"},
		{"id", base("  - {id: 'bad id!', kind: mp, appid: wx0000000000000001, secret: s}\n", ""), ".id: want [A-Za-z0-9._-]"},
		{"appid", base("  - {id: x, kind: mp, secret: s}\n", ""), "credentials[0] (x).appid: required"},
		{"secret", base("  - {kind: mp, appid: wx0000000000000001}\n", ""), "(wx0000000000000001).secret: required"},
		{"mode", base("  - {kind: mp, appid: wx0000000000000001, secret: s, mode: turbo}\n", ""), ".mode: want stable or classic"},
		{"wecom corpid", base("  - {id: w, kind: wecom, secret: s}\n", ""), "(w).corpid: required"},
		{"wecom id", base("  - {kind: wecom, corpid: ww0000000000000001, secret: s}\n", ""), "credentials[0].id"},
		{"duplicate id", base(okCred+okCred, ""), "duplicate id"},
		{"client key short", base(okCred, "  - {name: c, key: short, allow: [wx0000000000000001]}\n"), "clients[0] (c).key: at least 16"},
		{"client key missing", base(okCred, "  - {name: c, allow: [wx0000000000000001]}\n"), "(c).key: required"},
		{"client key both", base(okCred, "  - {name: c, key: 0123456789abcdef, key_sha256: ab, allow: [wx0000000000000001]}\n"), "not both"},
		{"client sha", base(okCred, "  - {name: c, key_sha256: xyz, allow: [wx0000000000000001]}\n"), "key_sha256: want 64 hex"},
		{"client allow", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [nope]}\n"), "unknown credential \"nope\""},
		{"client allow empty", base(okCred, "  - {name: c, key: 0123456789abcdef}\n"), ".allow: required"},
		{"client import", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [wx0000000000000001], import: [wx0000000000000001]}\n"), "(c).import: \"wx0000000000000001\" is not a credential of kind component"},
		{"client name", base(okCred, "  - {key: 0123456789abcdef, allow: [wx0000000000000001]}\n"), "clients[0].name: required"},
		{"client dup name", base(okCred, okClient+"  - {name: c, key: 0123456789abcdeX, allow: [wx0000000000000001]}\n"), "duplicate name"},
		{"client dup key", base(okCred, okClient+"  - {name: d, key: 0123456789abcdef, allow: [wx0000000000000001]}\n"), "same key as another client"},
		{"not yaml", "listen: [\n", "yaml"},
		{"component appid", base("  - {kind: component, secret: s, token: t, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), "credentials[0].component_appid: required"},
		{"component token", base("  - {kind: component, component_appid: wx00000000000c0002, secret: s, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), "(wx00000000000c0002).token: required"},
		{"component key", base("  - {kind: component, component_appid: wx00000000000c0002, secret: s, token: t, encoding_aes_key: short}\n", ""), "(wx00000000000c0002).encoding_aes_key: want the platform's 43-character"},
		{"component extra", base("  - {kind: component, component_appid: wx00000000000c0002, appid: wx0000000000000001, secret: s, token: t, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), "(wx00000000000c0002).appid: not used by kind component (it takes secret, component_appid, token, encoding_aes_key, tickets, callback)"},
		{"token on mp", base("  - {kind: mp, appid: wx0000000000000001, secret: s, token: t}\n", ""), "(wx0000000000000001).token: not used by kind mp (it takes secret, appid, mode, callback, tickets)"},
		{"callback token", base("  - {kind: mp, appid: wx0000000000000001, secret: s, callback: {encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}}\n", ""), "(wx0000000000000001).callback.token: required"},
		{"callback key", base("  - {kind: mp, appid: wx0000000000000001, secret: s, callback: {token: t, encoding_aes_key: nope}}\n", ""), "(wx0000000000000001).callback.encoding_aes_key: want the 43-character"},
		{"wecom callback key", base("  - {id: w, kind: wecom, corpid: ww0000000000000001, secret: s, callback: {token: t}}\n", ""), "(w).callback.encoding_aes_key: required for kind wecom"},
		{"allow component", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [wx0000000000000001/*]}\n"), "unknown credential \"wx0000000000000001/*\""},
		{"allow an authorizer of no platform", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [wx0000000000000001/wxa]}\n"), "unknown credential \"wx0000000000000001/wxa\""},
		{"max skew", "callbacks: {max_skew: -1s}\n", "callbacks.max_skew: must not be negative"},
		{"overlap within timeout", "upstream: {timeout: 10s}\nrefresh: {overlap: 10s}\n", "refresh.overlap: must exceed upstream.timeout (10s), got 10s"},
		{"overlap within default timeout", "refresh: {overlap: 15s}\n", "refresh.overlap: must exceed upstream.timeout (15s), got 15s"},
		{"default overlap within timeout", "upstream: {timeout: 6m}\n", "refresh.overlap: must exceed upstream.timeout (6m0s), got 5m0s"},
		{"lock ttl", "upstream: {timeout: 5s}\nrefresh: {lock_ttl: 5s}\n", "refresh.lock_ttl: must exceed upstream.timeout (5s)"},
		{"store type", "store: {type: etcd}\n", "store.type: want bolt or redis"},
		{"redis addrs", "store: {type: redis}\n", "store.addrs: required for store.type redis"},
		{"redis addr", "store: {type: redis, addrs: [nope]}\n", "store.addrs[0]: want host:port"},
		{"bolt addrs", "store: {addrs: ['127.0.0.1:6379']}\n", "store.addrs: only for store.type redis"},
		{"sentinel and cluster", "store: {type: redis, addrs: ['a:1'], master_name: m, cluster: true}\n", "store.cluster: Sentinel"},
		{"appid placeholder", base("  - {id: x, kind: mp, appid: wx..., secret: s}\n", ""), `credentials[0] (x).appid: want wx and 16 lowercase hex digits (the account's AppID), got "wx..."`},
		{"appid not an appid", base("  - {id: x, kind: mp, appid: nope, secret: s}\n", ""), `(x).appid: want wx and 16 lowercase hex digits`},
		{"appid short", base("  - {id: x, kind: mp, appid: wx2c2769f8efd9abc, secret: s}\n", ""), `(x).appid: want wx and 16`},
		{"appid upper case", base("  - {id: x, kind: mp, appid: wx2C2769F8EFD9ABC2, secret: s}\n", ""), `(x).appid: want wx and 16`},
		{"appid is a corpid", base("  - {id: x, kind: mp, appid: ww2c2769f8efd9abc2, secret: s}\n", ""), `(x).appid: want wx and 16`},
		{"corpid placeholder", base("  - {id: hr, kind: wecom, corpid: ww..., secret: s}\n", ""), `credentials[0] (hr).corpid: want ww (or, for an old enterprise account, wx) and 16 lowercase hex digits (the CorpID), got "ww..."`},
		{"corpid not a corpid", base("  - {id: hr, kind: wecom, corpid: nope, secret: s}\n", ""), `(hr).corpid: want ww`},
		{"component_appid placeholder", base("  - {kind: component, component_appid: wx..., secret: s, token: t, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), `(wx...).component_appid: want wx and 16 lowercase hex digits (the platform's AppID), got "wx..."`},
		{"failover url", "upstream: {api_failover: [nope]}\n", "upstream.api_failover[0]: want an http(s) URL"},
		{"debug listen", "debug: {listen: nope}\n", "debug.listen: want host:port"},
		{"debug listen not loopback", "debug: {listen: '0.0.0.0:6060'}\n", `debug.listen: want a loopback address`},
		{"debug listen any host", "debug: {listen: ':6060'}\n", `debug.listen: want a loopback address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v; want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "config.") {
				t.Errorf("Parse error = %v; want field paths, not Go type names", err)
			}
		})
	}
}

// TestRealIDsAccepted: ids of the shape WeChat issues pass, including
// the samples in WeChat's own documentation and a CorpID from before
// WeCom, which starts with wx.
func TestRealIDsAccepted(t *testing.T) {
	for _, cred := range []string{
		"{kind: mp, appid: wx2c2769f8efd9abc2, secret: s}",
		"{kind: mp, appid: wxb11529c136998cb6, secret: s, mode: classic}",
		"{id: hr, kind: wecom, corpid: ww4c6d0bd1c19fd4ef, secret: s}",
		"{id: legacy, kind: wecom, corpid: wx5823bf96d3bd56c7, secret: s}",
		"{kind: component, component_appid: wx0123456789abcdef, secret: s, token: t, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}",
	} {
		if _, err := config.Parse([]byte("credentials:\n  - "+cred+"\n"), env(nil)); err != nil {
			t.Errorf("%s: %v", cred, err)
		}
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	cr := config.Credential{ID: "x", Kind: "mp", AppID: "wx", Secret: "TOPSECRET"}
	cl := config.Client{Name: "c", Key: "TOPSECRETKEY0000"}
	for _, v := range []string{cr.LogValue().String(), cl.LogValue().String()} {
		if strings.Contains(v, "TOPSECRET") {
			t.Errorf("LogValue leaks a secret: %s", v)
		}
	}
}

// TestDebugListenLoopback: the profiler may listen on any loopback
// address, by number or by name.
func TestDebugListenLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:0"} {
		c, err := config.Parse([]byte("debug: {listen: '"+addr+"'}\n"), env(nil))
		if err != nil || c.Debug.Listen != addr {
			t.Errorf("debug.listen %q: got %+v, %v; want it accepted", addr, c.Debug, err)
		}
	}
}

// TestMemoryGCPercent: memory.gc_percent defaults to 40, takes a value in
// range, and refuses one out of it, naming the field.
func TestMemoryGCPercent(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want int
		bad  bool
	}{
		{"", config.DefaultGCPercent, false},
		{"memory: {gc_percent: 100}\n", 100, false},
		{"memory: {gc_percent: 5}\n", 0, true},
		{"memory: {gc_percent: -1}\n", 0, true},
		{"memory: {gc_percent: 5000}\n", 0, true},
	} {
		c, err := config.Parse([]byte(tt.yaml), env(nil))
		switch {
		case tt.bad && (err == nil || !strings.Contains(err.Error(), "memory.gc_percent")):
			t.Errorf("%q: error %v, want one naming memory.gc_percent", tt.yaml, err)
		case !tt.bad && err != nil:
			t.Errorf("%q: %v", tt.yaml, err)
		case !tt.bad && c.Memory.GCPercent != tt.want:
			t.Errorf("%q: gc_percent %d, want %d", tt.yaml, c.Memory.GCPercent, tt.want)
		}
	}
}

// Admin keys parse with their roles, and a single credential or client is
// checked as the file's are.
func TestAdmins(t *testing.T) {
	c, err := config.Parse([]byte("admins:\n  - {name: ops, key: 0123456789abcdef0, role: operator}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Admins) != 1 || c.Admins[0].Role != config.RoleOperator || c.Admins[0].KeyHash() != sha256.Sum256([]byte("0123456789abcdef0")) {
		t.Fatalf("admins = %+v", c.Admins)
	}
	cr := config.Credential{Kind: "mp", AppID: "wx0000000000000009", Secret: "s"}
	if err := config.ValidateCredential(&cr); err != nil || cr.ID != "wx0000000000000009" {
		t.Errorf("ValidateCredential: %v, id %q (want the appid by default)", err, cr.ID)
	}
	bad := config.Credential{Kind: "wecom", CorpID: "ww1", Secret: ""}
	if err := config.ValidateCredential(&bad); err == nil || !strings.Contains(err.Error(), "secret: required") {
		t.Errorf("ValidateCredential of a credential without secret: %v", err)
	}
	cl := config.Client{Name: "c", Key: "0123456789abcdef", Allow: []string{"nosuch"}}
	if err := config.ValidateClient(cl, map[string]bool{"a": true}, nil); err == nil || !strings.Contains(err.Error(), `unknown credential "nosuch"`) {
		t.Errorf("ValidateClient allowing an unknown id: %v", err)
	}
	cl.Allow = []string{"a"}
	if err := config.ValidateClient(cl, map[string]bool{"a": true}, nil); err != nil {
		t.Errorf("ValidateClient: %v", err)
	}
}
