package client_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/clienttest"
)

// wechatCounter counts the calls reaching the fake WeChat and, with
// before set, runs it ahead of each (to end the token in use).
type wechatCounter struct {
	next   http.RoundTripper
	calls  atomic.Int64
	before func()
}

func (w *wechatCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	w.calls.Add(1)
	if w.before != nil {
		w.before()
	}
	return w.next.RoundTrip(req)
}

// errcodeOf reads WeChat's errcode from an answer.
func errcodeOf(t *testing.T) func(*http.Response, error) int {
	return func(resp *http.Response, err error) int { t.Helper(); return decodeErrcode(t, resp, err) }
}

func decodeErrcode(t *testing.T, resp *http.Response, err error) int {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		ErrCode int `json:"errcode"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.ErrCode
}

// TestTransport: calls carry the token; a token WeChat ended is reported
// and the call sent once more, body included; a call that meets a dead
// token again is not retried a second time; a body over MaxBody is sent
// once.
func TestTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := clienttest.Start(t, clienttest.Options{InProcess: true})
		appid := srv.Apps[0].AppID
		cnt, c := counted(t, srv)
		wx := &wechatCounter{next: srv.FakeClient().Transport}
		tr := &client.Transport{Source: c.TokenSource("oa"), Base: wx}
		hc := &http.Client{Transport: tr}
		const api = "https://api.weixin.qq.com/cgi-bin/"
		clear := func() (*http.Response, error) {
			return hc.Post(api+"clear_quota", "application/json", strings.NewReader(`{"appid":"`+appid+`"}`))
		}

		if code := errcodeOf(t)(hc.Get(api + "getcallbackip")); code != 0 {
			t.Fatalf("first call: errcode %d", code)
		}
		if n := wx.calls.Load(); n != 1 {
			t.Fatalf("%d calls to WeChat, want 1", n)
		}

		// The token ends early: one report, one more call, with the body.
		srv.Fake.Expire(appid)
		wx.calls.Store(0)
		if code := errcodeOf(t)(clear()); code != 0 {
			t.Fatalf("call after the token ended: errcode %d, want 0 after the retry", code)
		}
		if n, r := wx.calls.Load(), cnt.count("POST /v1/tokens/oa/invalidate"); n != 2 || r != 1 {
			t.Fatalf("%d calls to WeChat and %d reports, want 2 and 1", n, r)
		}

		// Every token dies as it is used: the retry meets 42001 too, and
		// that answer is returned; no third call, no second report.
		time.Sleep(2 * time.Second) // past min_force_interval
		wx.calls.Store(0)
		wx.before = func() { srv.Fake.Expire(appid) }
		if code := errcodeOf(t)(clear()); code != 42001 {
			t.Fatalf("call meeting dead tokens twice: errcode %d, want 42001 passed on", code)
		}
		if n, r := wx.calls.Load(), cnt.count("POST /v1/tokens/oa/invalidate"); n != 2 || r != 2 {
			t.Fatalf("%d calls to WeChat and %d reports in all, want 2 and 2", n, r)
		}

		// A body over MaxBody is streamed once and not retried; the dead
		// token is still reported, for the next call.
		time.Sleep(2 * time.Second)
		wx.calls.Store(0)
		tr.MaxBody = 8
		body := io.NopCloser(strings.NewReader(`{"appid":"` + appid + `"}`)) // no GetBody: unknown length
		req, _ := http.NewRequest("POST", api+"clear_quota", body)
		if code := errcodeOf(t)(hc.Do(req)); code != 42001 {
			t.Fatalf("large body: errcode %d, want 42001 passed on", code)
		}
		if n, r := wx.calls.Load(), cnt.count("POST /v1/tokens/oa/invalidate"); n != 1 || r != 3 {
			t.Fatalf("large body: %d calls to WeChat and %d reports in all, want 1 and 3", n, r)
		}
	})
}
