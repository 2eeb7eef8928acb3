package config

import (
	"strings"
	"testing"
	"time"
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
    appid: wx1234
    secret: ${OA_SECRET}
  - id: hr
    kind: wecom
    corpid: ww1
    secret: "${HR_SECRET}"
    ` + `
clients:
  - name: shop
    key: ${SHOP_KEY}
    allow: [wx1234]
  - name: ops
    key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    allow: ["*"]
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good), env(map[string]string{
		"OA_SECRET": "s3cr#t: with yaml chars", "HR_SECRET": "hr", "SHOP_KEY": "0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Credentials[0]; got.ID != "wx1234" || got.Mode != ModeStable || got.Secret != "s3cr#t: with yaml chars" {
		t.Errorf("credential 0 = %+v; want id defaulted to appid, mode stable, secret expanded verbatim", got)
	}
	if c.Refresh.MinForceInterval != 45*time.Second {
		t.Errorf("min_force_interval = %v, want 45s", c.Refresh.MinForceInterval)
	}
	if c.Upstream.API != "https://api.weixin.qq.com" || len(c.Upstream.APIFailover) != 1 || c.Log.Level != "info" || c.Store.Type != "bolt" {
		t.Errorf("defaults not applied: %+v %+v", c.Upstream, c.Log)
	}
	if c.Clients[1].KeyHash() != c.Clients[1].KeyHash() || c.Clients[0].KeyHash() == [32]byte{} {
		t.Error("key hashes not derived")
	}
}

func TestParseComponent(t *testing.T) {
	c, err := Parse([]byte(`
credentials:
  - kind: component
    component_appid: wxcomp
    secret: s
    token: t
    encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
  - kind: mp
    appid: wx1
    secret: s
    callback: {token: t}
clients:
  - {name: platform-web, key: 0123456789abcdef, allow: [wxcomp, wxcomp/*], import: [wxcomp]}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Clients[0].Import; len(got) != 1 || got[0] != "wxcomp" {
		t.Fatalf("import = %q, want [wxcomp]", got)
	}
	if c.Credentials[0].ID != "wxcomp" || c.Callbacks.MaxSkew != 5*time.Minute {
		t.Fatalf("component id = %q, max_skew = %s; want defaults wxcomp and 5m", c.Credentials[0].ID, c.Callbacks.MaxSkew)
	}
}

func TestParseEmptyIsDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil))
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
	okCred := "  - {kind: mp, appid: wx1, secret: s}\n"
	okClient := "  - {name: c, key: 0123456789abcdef, allow: [wx1]}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"missing env", "credentials:\n  - kind: mp\n    appid: wx1\n    secret: ${NOPE}\n", "line 4: environment variable NOPE is not set"},
		{"unknown field", "lisen: x\n", "field lisen not found"},
		{"listen", "listen: nope\n", "listen: want host:port"},
		{"upstream", "upstream: {api: ftp://x}\n", "upstream.api: want an http(s) URL"},
		{"refresh.at", "refresh: {at: 1.5}\n", "refresh.at"},
		{"refresh.jitter", "refresh: {jitter: 0.7}\n", "refresh.jitter"},
		{"negative duration", "refresh: {max_backoff: -1s}\n", "refresh.max_backoff: must not be negative"},
		{"log level", "log: {level: loud}\n", "log.level"},
		{"kind", base("  - {id: x, kind: oa, appid: wx1, secret: s}\n", ""), "credentials[0] (x).kind: want mp, wecom or component"},
		{"id", base("  - {id: 'bad id!', kind: mp, appid: wx1, secret: s}\n", ""), ".id: want [A-Za-z0-9._-]"},
		{"appid", base("  - {id: x, kind: mp, secret: s}\n", ""), "credentials[0] (x).appid: required"},
		{"secret", base("  - {kind: mp, appid: wx1}\n", ""), "(wx1).secret: required"},
		{"mode", base("  - {kind: mp, appid: wx1, secret: s, mode: turbo}\n", ""), ".mode: want stable or classic"},
		{"wecom corpid", base("  - {id: w, kind: wecom, secret: s}\n", ""), "(w).corpid: required"},
		{"wecom id", base("  - {kind: wecom, corpid: ww, secret: s}\n", ""), "credentials[0].id"},
		{"duplicate id", base(okCred+okCred, ""), "duplicate id"},
		{"client key short", base(okCred, "  - {name: c, key: short, allow: [wx1]}\n"), "clients[0] (c).key: at least 16"},
		{"client key missing", base(okCred, "  - {name: c, allow: [wx1]}\n"), "(c).key: required"},
		{"client key both", base(okCred, "  - {name: c, key: 0123456789abcdef, key_sha256: ab, allow: [wx1]}\n"), "not both"},
		{"client sha", base(okCred, "  - {name: c, key_sha256: xyz, allow: [wx1]}\n"), "key_sha256: want 64 hex"},
		{"client allow", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [nope]}\n"), "unknown credential \"nope\""},
		{"client allow empty", base(okCred, "  - {name: c, key: 0123456789abcdef}\n"), ".allow: required"},
		{"client import", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [wx1], import: [wx1]}\n"), "(c).import: \"wx1\" is not a credential of kind component"},
		{"client name", base(okCred, "  - {key: 0123456789abcdef, allow: [wx1]}\n"), "clients[0].name: required"},
		{"client dup name", base(okCred, okClient+"  - {name: c, key: 0123456789abcdeX, allow: [wx1]}\n"), "duplicate name"},
		{"client dup key", base(okCred, okClient+"  - {name: d, key: 0123456789abcdef, allow: [wx1]}\n"), "same key as another client"},
		{"not yaml", "listen: [\n", "yaml"},
		{"component appid", base("  - {kind: component, secret: s, token: t, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), "credentials[0].component_appid: required"},
		{"component token", base("  - {kind: component, component_appid: wxc, secret: s, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), "(wxc).token: required"},
		{"component key", base("  - {kind: component, component_appid: wxc, secret: s, token: t, encoding_aes_key: short}\n", ""), "(wxc).encoding_aes_key: want the platform's 43-character"},
		{"component extra", base("  - {kind: component, component_appid: wxc, appid: wx1, secret: s, token: t, encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}\n", ""), "(wxc).kind: kind component takes"},
		{"token on mp", base("  - {kind: mp, appid: wx1, secret: s, token: t}\n", ""), "(wx1).component_appid: component_appid, token and encoding_aes_key are for kind component"},
		{"callback token", base("  - {kind: mp, appid: wx1, secret: s, callback: {encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG}}\n", ""), "(wx1).callback.token: required"},
		{"callback key", base("  - {kind: mp, appid: wx1, secret: s, callback: {token: t, encoding_aes_key: nope}}\n", ""), "(wx1).callback.encoding_aes_key: want the 43-character"},
		{"wecom callback key", base("  - {id: w, kind: wecom, corpid: ww, secret: s, callback: {token: t}}\n", ""), "(w).callback.encoding_aes_key: required for kind wecom"},
		{"allow component", base(okCred, "  - {name: c, key: 0123456789abcdef, allow: [wx1/*]}\n"), "unknown credential \"wx1/*\""},
		{"max skew", "callbacks: {max_skew: -1s}\n", "callbacks.max_skew: must not be negative"},
		{"lock ttl", "upstream: {timeout: 5s}\nrefresh: {lock_ttl: 5s}\n", "refresh.lock_ttl: must exceed upstream.timeout (5s)"},
		{"store type", "store: {type: etcd}\n", "store.type: want bolt or redis"},
		{"redis addrs", "store: {type: redis}\n", "store.addrs: required for store.type redis"},
		{"redis addr", "store: {type: redis, addrs: [nope]}\n", "store.addrs[0]: want host:port"},
		{"bolt addrs", "store: {addrs: ['127.0.0.1:6379']}\n", "store.addrs: only for store.type redis"},
		{"sentinel and cluster", "store: {type: redis, addrs: ['a:1'], master_name: m, cluster: true}\n", "store.cluster: Sentinel"},
		{"failover url", "upstream: {api_failover: [nope]}\n", "upstream.api_failover[0]: want an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	cr := Credential{ID: "x", Kind: KindMP, AppID: "wx", Secret: "TOPSECRET"}
	cl := Client{Name: "c", Key: "TOPSECRETKEY0000"}
	for _, v := range []string{cr.LogValue().String(), cl.LogValue().String()} {
		if strings.Contains(v, "TOPSECRET") {
			t.Errorf("LogValue leaks a secret: %s", v)
		}
	}
}
