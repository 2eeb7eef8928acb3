package wxtest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestFaultErrCode(t *testing.T) {
	e := newEnv(t, Config{DailyLimit: 1})
	e.f.SetFault(appID, Fault{ErrCode: codeSystemBusy})
	for range 3 {
		r := e.classic(appID, appSecret)
		if r.Status != http.StatusOK || r.ErrCode != codeSystemBusy || r.ErrMsg != "system error" {
			t.Fatalf("faulted call: status %d body %s, want HTTP 200 errcode -1", r.Status, r.Body)
		}
	}
	if st := e.f.Stats(appID); st.ClassicCalls != 3 || st.Issued != 0 {
		t.Errorf("Stats = %+v, want 3 classic calls and none issued", st)
	}
	// Faulted calls used none of the quota of one.
	e.f.ClearFault(appID)
	mustToken(t, e.classic(appID, appSecret))
}

func TestFaultEachEndpoint(t *testing.T) {
	e := newEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))
	e.f.SetFault("", Fault{ErrCode: codeMinuteQuota})
	for name, r := range map[string]reply{
		"classic": e.classic(appID, appSecret),
		"stable":  e.stable(appID, appSecret, false),
		"wecom":   e.wecom(corpID, corpSecret),
		"unknown": e.classic("wx-nobody", "x"),
	} {
		if r.ErrCode != codeMinuteQuota {
			t.Errorf("%s under a global fault: %s, want errcode %d", name, r.Body, codeMinuteQuota)
		}
	}
	// Token uses are not faulted.
	if got := e.use(tok); got != 0 {
		t.Errorf("getcallbackip under a fault: %d, want 0", got)
	}
	if r := e.ticket(tok, "jsapi"); r.ErrCode != 0 {
		t.Errorf("getticket under a fault: %s", r.Body)
	}
}

func TestFaultScope(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.SetFault("", Fault{ErrCode: codeSystemBusy})
	e.f.SetFault(appID, Fault{ErrCode: codeDailyQuota})
	if r := e.classic(appID, appSecret); r.ErrCode != codeDailyQuota {
		t.Errorf("the app's own fault: errcode %d, want %d", r.ErrCode, codeDailyQuota)
	}
	if r := e.wecom(corpID, corpSecret); r.ErrCode != codeSystemBusy {
		t.Errorf("another account under the global fault: errcode %d, want %d", r.ErrCode, codeSystemBusy)
	}
	e.f.SetFault(appID, Fault{ErrCode: codeInvalidAppID}) // replaces
	if r := e.classic(appID, appSecret); r.ErrCode != codeInvalidAppID {
		t.Errorf("replaced fault: errcode %d, want %d", r.ErrCode, codeInvalidAppID)
	}
	e.f.ClearFault(appID)
	if r := e.classic(appID, appSecret); r.ErrCode != codeSystemBusy {
		t.Errorf("after clearing the app's fault: errcode %d, want the global %d", r.ErrCode, codeSystemBusy)
	}
	e.f.ClearFault("")
	mustToken(t, e.classic(appID, appSecret))
}

func TestFaultCount(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.SetFault(appID, Fault{ErrCode: codeSystemBusy, Count: 2})
	want := []int{codeSystemBusy, codeSystemBusy, 0, 0}
	for i, w := range want {
		// Alternate endpoints: the count is per scope, not per endpoint.
		var r reply
		if i%2 == 0 {
			r = e.classic(appID, appSecret)
		} else {
			r = e.stable(appID, appSecret, false)
		}
		if r.ErrCode != w {
			t.Errorf("call %d: errcode %d, want %d", i+1, r.ErrCode, w)
		}
	}
}

func TestFaultStatus(t *testing.T) {
	e := newServerEnv(t, Config{})
	e.f.SetFault("", Fault{Status: http.StatusBadGateway, Count: 1})
	r := e.classic(appID, appSecret)
	if r.Status != http.StatusBadGateway || !strings.Contains(r.Body, "Bad Gateway") || r.ErrCode != 0 {
		t.Errorf("got status %d body %q, want 502 with a short text body", r.Status, r.Body)
	}
	mustToken(t, e.classic(appID, appSecret))

	// Status 200 gives a success status with a body that is not JSON.
	e.f.SetFault("", Fault{Status: http.StatusOK, ErrCode: codeSystemBusy, Count: 1})
	if r := e.classic(appID, appSecret); r.Status != http.StatusOK || r.ErrCode != 0 || r.AccessToken != "" {
		t.Errorf("Status 200 fault: got status %d body %q", r.Status, r.Body)
	}
}

func TestFaultDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{})
		f.AddApp(appID, appSecret)
		c := caller{t: t, c: f.Client(), base: "https://api.weixin.qq.com"}
		f.SetFault(appID, Fault{Delay: 3 * time.Second})

		start := time.Now()
		tok := mustToken(t, c.classic(appID, appSecret))
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("delayed call took %v of bubble time, want 3s", got)
		}
		if c.use(tok) != 0 {
			t.Errorf("token from a delayed call does not work")
		}

		// A delay with an error answers the error after the delay.
		f.SetFault(appID, Fault{Delay: time.Second, ErrCode: codeSystemBusy})
		start = time.Now()
		if r := c.classic(appID, appSecret); r.ErrCode != codeSystemBusy || time.Since(start) != time.Second {
			t.Errorf("delayed error: errcode %d after %v, want -1 after 1s", r.ErrCode, time.Since(start))
		}

		// A request that gives up during the delay gets its context's error.
		f.SetFault(appID, Fault{Delay: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.try(ctx, http.MethodGet, "/cgi-bin/token", url.Values{"appid": {appID}}, "")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("request cut short during a delay: err %v, want deadline exceeded", err)
		}
	})
}

func TestFaultHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{})
		f.AddApp(appID, appSecret)
		f.SetFault("", Fault{Hang: true})
		c := caller{t: t, c: f.Client(), base: "https://api.weixin.qq.com"}

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.try(ctx, http.MethodGet, "/cgi-bin/token", nil, "")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hung call: err %v, want deadline exceeded", err)
		}
		if got := time.Since(start); got != 30*time.Second {
			t.Errorf("hung call returned after %v, want 30s", got)
		}

		// http.Client.Timeout ends the hang too.
		hc := f.Client()
		hc.Timeout = 5 * time.Second
		if _, err := hc.Get("https://api.weixin.qq.com/cgi-bin/gettoken"); err == nil {
			t.Errorf("hung call with a client timeout succeeded")
		}
	})
}

func TestFaultHangOverHTTP(t *testing.T) {
	e := newServerEnv(t, Config{})
	e.f.SetFault("", Fault{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.try(ctx, http.MethodGet, "/cgi-bin/token", url.Values{"appid": {appID}}, "")
		done <- err
	}()
	// Cancel only once the server holds the call, so the hang is what the
	// cancellation ends.
	for e.f.Stats(appID).ClassicCalls == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled hung call: err %v, want context.Canceled", err)
	}
}
