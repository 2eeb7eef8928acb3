package wxtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestClientResponse(t *testing.T) {
	f := New(Config{})
	f.AddApp(appID, appSecret)
	resp, err := f.Client().Get("https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + appSecret)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Status != "200 OK" || resp.ProtoMajor != 1 {
		t.Errorf("status %q, proto %d; want 200 OK over HTTP/1.x", resp.Status, resp.ProtoMajor)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json; encoding=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if resp.ContentLength != int64(len(body)) || !strings.Contains(string(body), `"access_token"`) {
		t.Errorf("ContentLength %d for body %s", resp.ContentLength, body)
	}
	if resp.Request == nil || resp.Request.URL.Host != "api.weixin.qq.com" {
		t.Errorf("response does not carry its request")
	}

	resp, err = f.Client().Get("http://qyapi.weixin.qq.com/no/such/path")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", resp.StatusCode)
	}
}

// closeRecorder records whether a request body was closed.
type closeRecorder struct {
	io.Reader
	mu     sync.Mutex
	closed bool
}

func (c *closeRecorder) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func TestClientClosesRequestBody(t *testing.T) {
	f := New(Config{})
	body := &closeRecorder{Reader: strings.NewReader(`{"grant_type":"client_credential"}`)}
	req, err := http.NewRequest(http.MethodPost, "http://fake/cgi-bin/stable_token", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !body.closed {
		t.Errorf("request body was not closed")
	}
}

func TestClientCancelledBeforeSend(t *testing.T) {
	f := New(Config{})
	f.AddApp(appID, appSecret)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fake/cgi-bin/token?appid="+appID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Client().Do(req); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := f.Stats(appID).ClassicCalls; got != 0 {
		t.Errorf("a cancelled request reached the fake: ClassicCalls = %d", got)
	}
}

func TestClientHandlerPanic(t *testing.T) {
	c := &http.Client{Transport: transport{h: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})}}
	if _, err := c.Get("http://fake/"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want the handler's panic as an error", err)
	}
}

func TestRecorderHeaders(t *testing.T) {
	c := &http.Client{Transport: transport{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RemoteAddr != clientAddr || r.RequestURI != "/x?y=1" || r.Host != "fake" {
			t.Errorf("server view: RemoteAddr %q, RequestURI %q, Host %q", r.RemoteAddr, r.RequestURI, r.Host)
		}
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusTeapot)
		w.Header().Set("X-After", "1") // too late, as on a real server
		io.WriteString(w, "<html>tea</html>")
	})}}
	resp, err := c.Get("http://fake/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Before") != "1" || resp.Header.Get("X-After") != "" {
		t.Errorf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
		t.Errorf("sniffed Content-Type = %q, want text/html", got)
	}
}

func TestClientMatchesHTTP(t *testing.T) {
	// The same calls give the same answers in-process and over HTTP.
	for name, mk := range map[string]func(testing.TB, Config) env{"client": newEnv, "http": newServerEnv} {
		t.Run(name, func(t *testing.T) {
			e := mk(t, Config{})
			r := e.classic(appID, appSecret)
			if r.Status != http.StatusOK || r.ExpiresIn != 7200 || e.use(r.AccessToken) != 0 {
				t.Errorf("classic: %d %s", r.Status, r.Body)
			}
			if r := e.classic(appID, "wrong"); r.Body != `{"errcode":40125,"errmsg":"invalid appsecret"}` {
				t.Errorf("error body %s", r.Body)
			}
		})
	}
}
