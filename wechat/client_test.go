package wechat

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

func TestTokensAgainstFake(t *testing.T) {
	f := wxtest.New(wxtest.Config{})
	f.AddApp("wx1", "s1")
	f.AddCorp("ww1", "cs1")
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &Client{API: srv.URL, WeCom: srv.URL}
	ctx := t.Context()

	a, err := c.ClassicToken(ctx, "wx1", "s1")
	if err != nil || a.ExpiresIn != 7200*time.Second {
		t.Fatalf("ClassicToken = %+v, %v", a, err)
	}
	b, _ := c.ClassicToken(ctx, "wx1", "s1")
	if a.Value == b.Value {
		t.Fatal("two classic fetches returned the same token")
	}
	s1, err := c.StableToken(ctx, "wx1", "s1", false)
	if err != nil {
		t.Fatal(err)
	}
	if s2, _ := c.StableToken(ctx, "wx1", "s1", false); s2.Value != s1.Value {
		t.Fatal("normal stable calls returned different tokens")
	}
	if s3, err := c.StableToken(ctx, "wx1", "s1", true); err != nil || s3.Value == s1.Value {
		t.Fatalf("forced stable = %v, %v; want a new token", s3, err)
	}
	w, err := c.WeComToken(ctx, "ww1", "cs1")
	if err != nil {
		t.Fatal(err)
	}
	if ips, err := c.CallbackIP(ctx, w.Value); err != nil || len(ips) == 0 {
		t.Fatalf("CallbackIP = %v, %v", ips, err)
	}
	if tk, err := c.Ticket(ctx, b.Value, "jsapi"); err != nil || tk.Value == "" {
		t.Fatalf("Ticket = %v, %v", tk, err)
	}
	if st := f.Stats("wx1"); st.ClassicCalls != 2 || st.StableCalls != 3 || st.StableForced != 1 {
		t.Fatalf("fake saw %+v", st)
	}
}

func TestErrors(t *testing.T) {
	f := wxtest.New(wxtest.Config{})
	f.AddApp("wx1", "right")
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &Client{API: srv.URL, WeCom: srv.URL}

	_, err := c.ClassicToken(t.Context(), "wx1", "wrong-secret")
	var api *APIError
	if !errors.As(err, &api) || api.ErrCode != CodeInvalidSecret || Classify(err) != Config {
		t.Fatalf("wrong secret error = %v; want APIError 40125 classed config", err)
	}
	f.SetFault("", wxtest.Fault{Status: 502})
	_, err = c.ClassicToken(t.Context(), "wx1", "right")
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 502 || Classify(err) != Retry {
		t.Fatalf("502 error = %v; want HTTPError 502 classed retry", err)
	}
}

// TestErrorsHideSecret: net/http puts the whole URL, AppSecret included,
// into transport errors; ours must not carry it.
func TestErrorsHideSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler) // drop the connection
	}))
	defer srv.Close()
	c := &Client{API: srv.URL}
	_, err := c.ClassicToken(t.Context(), "wx1", "TOPSECRET")
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") || Classify(err) != Retry {
		t.Fatalf("error = %v; want a retryable error without the secret", err)
	}
	srv.Close()
	_, err = c.ClassicToken(t.Context(), "wx1", "TOPSECRET")
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("connection refused error = %v; must not contain the secret", err)
	}
}

func TestBadResponses(t *testing.T) {
	bodies := []string{
		`not json`,
		`{"access_token":"","expires_in":7200}`,
		`{"access_token":"abc","expires_in":0}`,
		`{"access_token":"has space","expires_in":7200}`,
		`{"access_token":"quote\"d","expires_in":7200}`,
		fmt.Sprintf(`{"access_token":"%s","expires_in":7200}`, strings.Repeat("a", maxTokenLen+1)),
		`{"access_token":"x","expires_in":7200,"pad":"` + strings.Repeat("a", maxBody) + `"}`,
	}
	for _, body := range bodies {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body))
		}))
		c := &Client{API: srv.URL}
		if _, err := c.ClassicToken(t.Context(), "wx", "s"); !errors.Is(err, ErrBadResponse) {
			t.Errorf("body %.40q: error = %v, want ErrBadResponse", body, err)
		}
		srv.Close()
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want Class
	}{
		{&APIError{ErrCode: -1}, Retry},
		{&APIError{ErrCode: 40001}, Stale},
		{&APIError{ErrCode: 42001}, Stale},
		{&APIError{ErrCode: 40014}, Stale},
		{&APIError{ErrCode: 40002}, Config},
		{&APIError{ErrCode: 40013}, Config},
		{&APIError{ErrCode: 40125}, Config},
		{&APIError{ErrCode: 40164}, Config},
		{&APIError{ErrCode: 40243}, Config},
		{&APIError{ErrCode: 43003}, Config},
		{&APIError{ErrCode: 60020}, Config},
		{&APIError{ErrCode: 45009}, DailyQuota},
		{&APIError{ErrCode: 45011}, MinuteQuota},
		{&APIError{ErrCode: 61005}, Ticket},
		{&APIError{ErrCode: 61023}, Revoked},
		// WeCom suites.
		{&APIError{ErrCode: CodeBadAuthCode}, Config},
		{&APIError{ErrCode: CodeBadSuiteSecret}, Config},
		{&APIError{ErrCode: CodeBadSuiteID}, Config},
		{&APIError{ErrCode: CodeBadSuiteToken}, Stale},
		{&APIError{ErrCode: CodeSuiteTokenExpired}, Stale},
		{&APIError{ErrCode: CodeBadPermanentCode}, Revoked},
		{&APIError{ErrCode: CodeBadSuiteTicket}, Ticket},
		{fmt.Errorf("suite: %w", ErrNoTicket), Ticket},
		{&APIError{ErrCode: 99999}, Retry},
		{fmt.Errorf("wrapped: %w", &APIError{ErrCode: 40125}), Config},
		{&HTTPError{StatusCode: 503}, Retry},
		{errors.New("dial tcp: refused"), Retry},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
