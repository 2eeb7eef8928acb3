package wxtest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWhitelist(t *testing.T) {
	// Over real loopback HTTP, so the caller's address is a real one.
	e := newServerEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))

	e.f.SetWhitelist("10.0.0.1", "10.0.0.2")
	r := e.classic(appID, appSecret)
	if r.ErrCode != codeIPNotWhitelisted || r.ErrMsg != "invalid ip 127.0.0.1, not in whitelist" {
		t.Errorf("classic from outside the whitelist: %s", r.Body)
	}
	if r := e.stable(appID, appSecret, false); r.ErrCode != codeIPNotWhitelisted {
		t.Errorf("stable from outside the whitelist: %s", r.Body)
	}
	if r := e.wecom(corpID, corpSecret); r.ErrCode != codeWeComIPDenied {
		t.Errorf("gettoken from outside the whitelist: %s", r.Body)
	}
	// Using a token is not restricted by the whitelist.
	if got := e.use(tok); got != 0 {
		t.Errorf("getcallbackip from outside the whitelist: %d, want 0", got)
	}

	e.f.SetWhitelist("10.0.0.1", "127.0.0.1")
	mustToken(t, e.classic(appID, appSecret))
	mustToken(t, e.wecom(corpID, corpSecret))

	e.f.SetWhitelist()
	mustToken(t, e.classic(appID, appSecret))
	if st := e.f.Stats(appID); st.ClassicCalls != 4 || st.Issued != 3 {
		t.Errorf("Stats = %+v, want 4 classic calls and 3 issued", st)
	}
}

func TestWhitelistClient(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.SetWhitelist("127.0.0.1")
	mustToken(t, e.classic(appID, appSecret))
	e.f.SetWhitelist("::1")
	if r := e.classic(appID, appSecret); r.ErrMsg != "invalid ip 127.0.0.1, not in whitelist" {
		t.Errorf("Client requests should come from 127.0.0.1: %s", r.Body)
	}
}

func TestCallerIP(t *testing.T) {
	tests := []struct {
		remote, want string
	}{
		{"127.0.0.1:1234", "127.0.0.1"},
		{"[::ffff:10.1.2.3]:443", "10.1.2.3"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"[::1]:80", "::1"},
		{"not-an-address", "not-an-address"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tt.remote
		if got := callerIP(r); got != tt.want {
			t.Errorf("callerIP(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
