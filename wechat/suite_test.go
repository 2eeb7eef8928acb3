package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// Suites of the tests against the fake: a third-party app template and a
// custom-developed one (its id starts "dk").
var (
	testSuite = wxtest.Suite{SuiteID: "ww00000000000000s1", Secret: "suite-secret", Token: "t",
		EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
	testCustomSuite = wxtest.Suite{SuiteID: "dk00000000000000s2", Secret: "custom-secret", Token: "t",
		EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
)

const authCorp = "ww00000000000000c9"

// newSuiteFake returns a fake with both suites and a provider, and a
// Client whose WeCom host is the fake, over HTTP.
func newSuiteFake(t *testing.T) (*wxtest.Fake, *Client) {
	f := wxtest.New(wxtest.Config{})
	f.AddSuite(testSuite)
	f.AddSuite(testCustomSuite)
	f.AddProvider("ww00000000000000p1", "provider-secret")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, &Client{API: srv.URL, WeCom: srv.URL}
}

func TestSuiteAgainstFake(t *testing.T) {
	f, c := newSuiteFake(t)
	ctx := t.Context()
	ticket, err := f.PushSuiteTicket(ctx, testSuite.SuiteID)
	if !errors.Is(err, wxtest.ErrNoPushTarget) {
		t.Fatalf("PushSuiteTicket = %v; want ErrNoPushTarget and a ticket", err)
	}
	st, err := c.SuiteToken(ctx, testSuite.SuiteID, testSuite.Secret, ticket)
	if err != nil || st.ExpiresIn != 7200*time.Second {
		t.Fatalf("SuiteToken = %+v, %v", st, err)
	}

	code, _ := f.CreateAuth(ctx, testSuite.SuiteID, authCorp)
	auth, err := c.PermanentCode(ctx, st.Value, code, false)
	if err != nil {
		t.Fatal(err)
	}
	if auth.CorpID != authCorp || auth.CorpName == "" || auth.AgentID == 0 || auth.Customized ||
		auth.PermanentCode != f.SuitePermanentCode(testSuite.SuiteID, authCorp) || auth.Token != (Token{}) {
		t.Errorf("v2 PermanentCode = %+v; want the corp, its agent, the fake's permanent code and no token", auth)
	}
	if _, err := c.PermanentCode(ctx, st.Value, code, false); ErrCode(err) != CodeBadAuthCode || Classify(err) != Config {
		t.Errorf("auth code used twice: %v; want errcode %d classed config", err, CodeBadAuthCode)
	}
	ct, err := c.CorpToken(ctx, st.Value, authCorp, auth.PermanentCode)
	if err != nil || ct.ExpiresIn != 7200*time.Second {
		t.Fatalf("CorpToken = %+v, %v", ct, err)
	}
	if ips, err := c.WeComAPIDomainIP(ctx, ct.Value); err != nil || len(ips) == 0 {
		t.Errorf("corp token at get_api_domain_ip: %v, %v", ips, err)
	}
	if _, err := c.WeComAPIDomainIP(ctx, st.Value); ErrCode(err) != CodeInvalidToken {
		t.Errorf("suite token at get_api_domain_ip: %v; want errcode %d", err, CodeInvalidToken)
	}

	// v1 answers a corp token with the permanent code.
	code, _ = f.CreateAuth(ctx, testSuite.SuiteID, "ww00000000000000c8")
	v1, err := c.PermanentCode(ctx, st.Value, code, true)
	if err != nil || v1.Token.Value == "" || v1.Token.ExpiresIn != 7200*time.Second || v1.CorpID != "ww00000000000000c8" {
		t.Fatalf("v1 PermanentCode = %+v, %v; want a corp token", v1, err)
	}

	if err := f.CancelAuth(ctx, testSuite.SuiteID, authCorp); !errors.Is(err, wxtest.ErrNoPushTarget) {
		t.Fatal(err)
	}
	if _, err := c.CorpToken(ctx, st.Value, authCorp, auth.PermanentCode); ErrCode(err) != CodeBadPermanentCode || Classify(err) != Revoked {
		t.Errorf("cancelled permanent code: %v; want errcode %d classed revoked", err, CodeBadPermanentCode)
	}
	f.Expire(testSuite.SuiteID)
	if _, err := c.CorpToken(ctx, st.Value, authCorp, auth.PermanentCode); ErrCode(err) != CodeSuiteTokenExpired || Classify(err) != Stale {
		t.Errorf("expired suite token: %v; want errcode %d classed stale", err, CodeSuiteTokenExpired)
	}
}

func TestCustomSuiteAgainstFake(t *testing.T) {
	f, c := newSuiteFake(t)
	ctx := t.Context()
	ticket, _ := f.PushSuiteTicket(ctx, testCustomSuite.SuiteID)
	st, err := c.SuiteToken(ctx, testCustomSuite.SuiteID, testCustomSuite.Secret, ticket)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := f.CreateAuth(ctx, testCustomSuite.SuiteID, authCorp)
	auth, err := c.PermanentCode(ctx, st.Value, code, false)
	if err != nil || !auth.Customized {
		t.Fatalf("PermanentCode of a custom app = %+v, %v; want Customized", auth, err)
	}
	// A custom app's token comes from gettoken, the permanent code its secret.
	if tok, err := c.WeComToken(ctx, authCorp, auth.PermanentCode); err != nil || tok.Value == "" {
		t.Errorf("WeComToken with the permanent code = %+v, %v", tok, err)
	}
	if _, err := c.CorpToken(ctx, st.Value, authCorp, auth.PermanentCode); ErrCode(err) != 48001 {
		t.Errorf("CorpToken of a custom app: %v; want errcode 48001", err)
	}
}

func TestProviderTokenAgainstFake(t *testing.T) {
	_, c := newSuiteFake(t)
	a, err := c.ProviderToken(t.Context(), "ww00000000000000p1", "provider-secret")
	if err != nil || a.ExpiresIn != 7200*time.Second {
		t.Fatalf("ProviderToken = %+v, %v", a, err)
	}
	if b, err := c.ProviderToken(t.Context(), "ww00000000000000p1", "provider-secret"); err != nil || b.Value != a.Value {
		t.Errorf("second ProviderToken = %+v, %v; want the same token", b, err)
	}
	if _, err := c.ProviderToken(t.Context(), "ww00000000000000p1", "wrong"); ErrCode(err) != CodeInvalidCredential {
		t.Errorf("wrong provider secret: %v; want errcode %d", err, CodeInvalidCredential)
	}
}

func TestSuiteTokenErrorsAgainstFake(t *testing.T) {
	f, c := newSuiteFake(t)
	ctx := t.Context()
	ticket, _ := f.PushSuiteTicket(ctx, testSuite.SuiteID)
	tests := []struct {
		name, id, secret, ticket string
		code                     int
		class                    Class
	}{
		{"unknown suite", "ww-unknown", "x", ticket, CodeBadSuiteID, Config},
		{"wrong secret", testSuite.SuiteID, "wrong", ticket, CodeBadSuiteSecret, Config},
		{"bad ticket", testSuite.SuiteID, testSuite.Secret, "stale", CodeBadSuiteTicket, Ticket},
	}
	for _, tt := range tests {
		_, err := c.SuiteToken(ctx, tt.id, tt.secret, tt.ticket)
		if ErrCode(err) != tt.code || Classify(err) != tt.class {
			t.Errorf("%s: %v; want errcode %d classed %s", tt.name, err, tt.code, tt.class)
		}
	}
	if _, err := c.CorpToken(ctx, "not-a-suite-token", authCorp, "p"); ErrCode(err) != CodeBadSuiteToken || Classify(err) != Stale {
		t.Errorf("unknown suite token: %v; want errcode %d classed stale", err, CodeBadSuiteToken)
	}
}

// TestSuiteResponses: the suite endpoints answer an errcode only when they
// fail, though an errcode 0 beside a token must work too; a success body
// without its credential, or with one unfit for a URL, is malformed.
func TestSuiteResponses(t *testing.T) {
	long := strings.Repeat("a", maxTokenLen+1)
	auth := `"auth_corp_info":{"corpid":"ww1","corp_name":"名"},"auth_info":{"agent":[{"agentid":7}]}`
	tests := []struct {
		name string
		call func(*Client) error
		body string
		ok   bool
	}{
		{"suite token", suiteCall, `{"suite_access_token":"s","expires_in":7200}`, true},
		{"suite token, errcode 0", suiteCall, `{"errcode":0,"errmsg":"ok","suite_access_token":"s","expires_in":7200}`, true},
		{"suite token missing", suiteCall, `{"expires_in":7200}`, false},
		{"suite token, access_token instead", suiteCall, `{"access_token":"s","expires_in":7200}`, false},
		{"corp token", corpCall, `{"access_token":"c","expires_in":7200}`, true},
		{"corp token missing", corpCall, `{"expires_in":7200}`, false},
		{"provider token", providerCall, `{"provider_access_token":"p","expires_in":7200}`, true},
		{"provider token without expiry", providerCall, `{"provider_access_token":"p"}`, false},
		{"permanent code", permanentCall(false), `{"permanent_code":"pc",` + auth + `}`, true},
		{"permanent code, no agent", permanentCall(false), `{"permanent_code":"pc","auth_corp_info":{"corpid":"ww1"}}`, true},
		{"permanent code missing", permanentCall(false), `{` + auth + `}`, false},
		{"permanent code with a newline", permanentCall(false), `{"permanent_code":"p\nc",` + auth + `}`, false},
		{"permanent code too long", permanentCall(false), `{"permanent_code":"` + long + `",` + auth + `}`, false},
		{"permanent code without corpid", permanentCall(false), `{"permanent_code":"pc"}`, false},
		{"v1 with its token", permanentCall(true), `{"permanent_code":"pc","access_token":"c","expires_in":7200,` + auth + `}`, true},
		{"v1 without a token", permanentCall(true), `{"permanent_code":"pc",` + auth + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			err := tt.call(&Client{WeCom: srv.URL})
			if tt.ok && err != nil {
				t.Errorf("error %v, want none", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadResponse) {
				t.Errorf("error %v, want ErrBadResponse", err)
			}
		})
	}
}

func suiteCall(c *Client) error {
	_, err := c.SuiteToken(context.Background(), "ww", "s", "t")
	return err
}

func corpCall(c *Client) error {
	_, err := c.CorpToken(context.Background(), "st", "ww", "pc")
	return err
}

func providerCall(c *Client) error {
	_, err := c.ProviderToken(context.Background(), "ww", "s")
	return err
}

func permanentCall(v1 bool) func(*Client) error {
	return func(c *Client) error {
		a, err := c.PermanentCode(context.Background(), "st", "code", v1)
		if err == nil && (a.CorpID != "ww1" || a.PermanentCode != "pc") {
			return fmt.Errorf("decoded %+v", a)
		}
		return err
	}
}

// TestSuiteRequests: what the client sends, where, with which token.
func TestSuiteRequests(t *testing.T) {
	type seen struct{ method, path, query, body string }
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body)}
		w.Write([]byte(`{"errcode":40001,"errmsg":"x"}`))
	}))
	defer srv.Close()
	c := &Client{API: "http://api.invalid", WeCom: srv.URL}
	ctx := t.Context()
	calls := []struct {
		call func() error
		want seen
	}{
		{func() error { _, err := c.SuiteToken(ctx, "ww1", "sec", "tkt"); return err },
			seen{"POST", "/cgi-bin/service/get_suite_token", "", `{"suite_id":"ww1","suite_secret":"sec","suite_ticket":"tkt"}`}},
		{func() error { _, err := c.PermanentCode(ctx, "st", "ac", false); return err },
			seen{"POST", "/cgi-bin/service/v2/get_permanent_code", "suite_access_token=st", `{"auth_code":"ac"}`}},
		{func() error { _, err := c.PermanentCode(ctx, "st", "ac", true); return err },
			seen{"POST", "/cgi-bin/service/get_permanent_code", "suite_access_token=st", `{"auth_code":"ac"}`}},
		{func() error { _, err := c.CorpToken(ctx, "st", "ww2", "pc"); return err },
			seen{"POST", "/cgi-bin/service/get_corp_token", "suite_access_token=st", `{"auth_corpid":"ww2","permanent_code":"pc"}`}},
		{func() error { _, err := c.ProviderToken(ctx, "ww3", "ps"); return err },
			seen{"POST", "/cgi-bin/service/get_provider_token", "", `{"corpid":"ww3","provider_secret":"ps"}`}},
	}
	for _, tt := range calls {
		err := tt.call()
		if got != tt.want {
			t.Errorf("sent %+v, want %+v", got, tt.want)
		}
		var api *APIError
		if !errors.As(err, &api) || api.ErrCode != 40001 {
			t.Errorf("%s: error %v, want the APIError", tt.want.path, err)
		}
	}
}

// TestSuiteErrorsHideSecrets: the secrets travel in POST bodies, and a
// failed call's error carries neither body nor URL.
func TestSuiteErrorsHideSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer srv.Close()
	c := &Client{WeCom: srv.URL}
	var errs []error
	_, err := c.SuiteToken(t.Context(), "ww1", "TOPSECRET", "TOPSECRET")
	errs = append(errs, err)
	_, err = c.CorpToken(t.Context(), "TOPSECRET", "ww1", "TOPSECRET")
	errs = append(errs, err)
	_, err = c.ProviderToken(t.Context(), "ww1", "TOPSECRET")
	errs = append(errs, err)
	_, err = c.PermanentCode(t.Context(), "TOPSECRET", "TOPSECRET", true)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") || Classify(err) != Retry {
			t.Errorf("error = %v; want a retryable error without the secret", err)
		}
	}
}
