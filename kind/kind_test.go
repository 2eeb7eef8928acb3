package kind_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

// samples is one configured credential of every kind, with its callback
// and tickets enabled where the kind has them.
var samples = map[string]string{
	"mp": "{id: oa, kind: mp, appid: wx0000000000000001, secret: s, tickets: [jsapi, wx_card], callback: {token: t}}",
	"wecom": "{id: hr, kind: wecom, corpid: ww0000000000000001, secret: s, agentid: 1000002, tickets: [jsapi, agent_config]," +
		" callback: {token: t, encoding_aes_key: " + aesKey + "}}",
	"component": "{id: plat, kind: component, component_appid: wx00000000000000c1, secret: s, token: t," +
		" encoding_aes_key: " + aesKey + ", tickets: [jsapi]}",
	"suite": "{kind: suite, suite_id: ww0000000000005e1, suite_secret: s, token: t, encoding_aes_key: " + aesKey +
		", tickets: [jsapi, agent_config]}",
	"provider": "{kind: provider, corpid: ww00000000000000f1, provider_secret: s}",
}

func parse(t *testing.T, yaml string, ks config.Kinds) (*config.Config, error) {
	t.Helper()
	return config.ParseWith([]byte(yaml), func(string) (string, bool) { return "", false }, ks)
}

// TestEveryKindFromItsDeclaration: each kind's configuration, source,
// tickets, callback routes and status come from its one declaration, and
// a registry without the declaration knows nothing of the kind: its
// configuration is refused, and its routes are gone.
func TestEveryKindFromItsDeclaration(t *testing.T) {
	all := kind.Default.All()
	if len(all) != len(samples) {
		t.Fatalf("%d kinds registered, %d samples: give every kind a sample", len(all), len(samples))
	}
	for _, k := range all {
		t.Run(k.Name, func(t *testing.T) {
			yaml := "credentials:\n  - " + samples[k.Name] + "\n"
			cfg, err := parse(t, yaml, kind.Default)
			if err != nil {
				t.Fatalf("sample refused: %v", err)
			}
			cr := cfg.Credentials[0]
			env := &kind.Env{Client: &wechat.Client{}, Store: memory.New(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			set, err := kind.Default.Build(env, cfg.Credentials)
			if err != nil {
				t.Fatal(err)
			}
			c := set.Credentials[0]
			if c.ID != cr.ID || c.Kind != k.Name || c.Source == nil {
				t.Errorf("built %+v, want id %s, kind %s and a source", c, cr.ID, k.Name)
			}
			if (set.Platforms[cr.ID] != nil) != k.Authorizers {
				t.Errorf("platform built = %v, want %v", set.Platforms[cr.ID] != nil, k.Authorizers)
			}
			if !k.Authorizers && len(c.Children) != len(cr.Tickets) {
				t.Errorf("%d tickets built, %d configured", len(c.Children), len(cr.Tickets))
			}
			for _, ch := range c.Children {
				if ch.Parent != "" && ch.Parent != cr.ID || ch.Kind != kind.TicketKind || !ch.Repeating ||
					!strings.HasPrefix(ch.ID, cr.ID+"/tickets/") {
					t.Errorf("ticket %+v: want a repeating ticket under %s", ch, cr.ID)
				}
			}
			if (len(set.Callbacks) == 1) != (k.Callback != nil) {
				t.Errorf("%d callbacks built, kind has callback %v", len(set.Callbacks), k.Callback != nil)
			}
			// The WeChat-compatible facade names it as its kind declares.
			if want := k.Facade != ""; (len(set.Facade) == 1) != want ||
				want && (set.Facade[0].ID != cr.ID || set.Facade[0].Family != k.Facade || set.Facade[0].AppID == "") {
				t.Errorf("facade credentials %+v, kind declares %q", set.Facade, k.Facade)
			}

			// Status: the manager shows the declared kind.
			m, err := token.New(token.Config{Store: env.Store, Logger: env.Logger}, set.Credentials)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := m.Snapshot(cr.ID); err != nil || s.Kind != k.Name {
				t.Errorf("status kind = %v (%v), want %s", s, err, k.Name)
			}

			// Routes exist with the declaration and not without it.
			without := kind.Default.Without(k.Name)
			for _, reg := range []*kind.Registry{kind.Default, without} {
				sc := server.Config{Tokens: m, CallbackModes: reg.CallbackModes(), Logger: env.Logger}
				if reg == kind.Default {
					sc.Callbacks = set.Callbacks
				}
				api, err := server.New(sc)
				if err != nil {
					t.Fatal(err)
				}
				for _, method := range []string{http.MethodGet, http.MethodPost} {
					w := httptest.NewRecorder()
					api.ServeHTTP(w, httptest.NewRequest(method, "/callback/"+k.Name+"/"+cr.ID, nil))
					declared := reg == kind.Default && k.Callback != nil &&
						(method == http.MethodPost || k.Callback.Verify)
					// A declared route refuses this unsigned request
					// (400); an undeclared one is no route at all.
					noRoute := strings.Contains(w.Body.String(), "no such endpoint") || w.Code == http.StatusMethodNotAllowed
					if declared == noRoute {
						t.Errorf("%s /callback/%s/ with the kind declared=%v: %d %s", method, k.Name, reg == kind.Default, w.Code, w.Body)
					}
				}
			}

			// Configuration without the declaration refuses the kind.
			if _, err := parse(t, yaml, without); err == nil || !strings.Contains(err.Error(), ".kind: want") {
				t.Errorf("without its declaration, the sample parsed: %v", err)
			}
		})
	}
}

// TestTicketsValidated: only the tickets a kind has may be enabled, and
// WeCom's agent ticket needs the application's AgentId.
func TestTicketsValidated(t *testing.T) {
	for _, tt := range []struct{ cred, want string }{
		{"{kind: mp, appid: wx0000000000000001, secret: s, tickets: [agent_config]}", `kind mp has no ticket "agent_config" (it has jsapi or wx_card)`},
		{"{kind: mp, appid: wx0000000000000001, secret: s, tickets: [jsapi, jsapi]}", `"jsapi" listed twice`},
		{"{kind: mp, appid: wx0000000000000001, secret: s, agentid: 5}", `agentid: not used by kind mp`},
		{"{id: hr, kind: wecom, corpid: ww0000000000000001, secret: s, tickets: [agent_config]}", `(hr).agentid: required for the agent_config ticket`},
		{"{id: hr, kind: wecom, corpid: ww0000000000000001, secret: s, tickets: [wx_card]}", `kind wecom has no ticket "wx_card"`},
		{"{kind: suite, suite_id: ww1, secret: s, token: t, encoding_aes_key: " + aesKey + ", tickets: [wx_card]}", `kind suite has no ticket "wx_card"`},
		{"{kind: suite, suite_id: ww1, secret: s, suite_secret: t, token: t, encoding_aes_key: " + aesKey + "}", `suite_secret: set secret or suite_secret, not both`},
		{"{kind: suite, suite_id: ww1, secret: s, encoding_aes_key: " + aesKey + "}", `token: required for kind suite`},
		{"{kind: suite, suite_id: ww1, secret: s, token: t}", `encoding_aes_key: want the suite's 43-character EncodingAESKey`},
		{"{kind: suite, suite_id: ww/1, secret: s, token: t, encoding_aes_key: " + aesKey + "}", `suite_id: want the SuiteID`},
		{"{kind: suite, suite_id: dk1, secret: s, token: t, encoding_aes_key: " + aesKey + ", permanent_code_v1: true}", `permanent_code_v1: not for a custom-developed app`},
		{"{kind: suite, secret: s, token: t, encoding_aes_key: " + aesKey + "}", `suite_id: required for kind suite`},
		{"{kind: provider, corpid: ww0000000000000001}", `secret: required`},
		{"{kind: provider, corpid: ww0000000000000001, secret: s, provider_secret: t}", `provider_secret: set secret or provider_secret, not both`},
		{"{kind: provider, corpid: nope, secret: s}", `corpid: want ww`},
		{"{kind: mp, appid: wx0000000000000001, secret: s, suite_id: ww1}", `suite_id: not used by kind mp`},
	} {
		_, err := parse(t, "credentials:\n  - "+tt.cred+"\n", nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.cred, err, tt.want)
		}
	}
}
