package wxtest

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestBeijingDay(t *testing.T) {
	tests := []struct {
		at   time.Time
		want int
	}{
		{time.Date(2025, 3, 10, 15, 59, 59, 0, time.UTC), 20250310},
		{time.Date(2025, 3, 10, 16, 0, 0, 0, time.UTC), 20250311},
		{time.Date(2025, 3, 11, 0, 0, 0, 0, beijing), 20250311},
		{time.Date(2024, 12, 31, 16, 0, 0, 0, time.UTC), 20250101},
	}
	for _, tt := range tests {
		if got := beijingDay(tt.at); got != tt.want {
			t.Errorf("beijingDay(%v) = %d, want %d", tt.at, got, tt.want)
		}
	}
}

func TestDailyQuota(t *testing.T) {
	e := newEnv(t, Config{DailyLimit: 3})
	// 07:00 in Beijing is 23:00 UTC the day before: UTC midnight must not
	// reset the count, Beijing midnight must.
	e.clk.Set(time.Date(2025, 3, 9, 23, 0, 0, 0, time.UTC))

	mustToken(t, e.classic(appID, appSecret))
	if r := e.classic(appID, "wrong"); r.ErrCode != codeInvalidSecret {
		t.Fatalf("wrong secret: errcode %d", r.ErrCode)
	}
	mustToken(t, e.classic(appID, appSecret))
	r := e.classic(appID, appSecret)
	if r.ErrCode != codeDailyQuota || r.ErrMsg != "reach max api daily quota limit" {
		t.Fatalf("fourth call of the day (one failed): %s, want 45009", r.Body)
	}

	e.clk.Advance(2 * time.Hour) // past UTC midnight
	if r := e.classic(appID, appSecret); r.ErrCode != codeDailyQuota {
		t.Errorf("after UTC midnight: errcode %d, want %d", r.ErrCode, codeDailyQuota)
	}
	e.clk.Set(time.Date(2025, 3, 10, 23, 59, 59, 0, beijing))
	if r := e.classic(appID, appSecret); r.ErrCode != codeDailyQuota {
		t.Errorf("a second before Beijing midnight: errcode %d, want %d", r.ErrCode, codeDailyQuota)
	}
	e.clk.Advance(time.Second)
	mustToken(t, e.classic(appID, appSecret))

	// Stable normal calls use no quota.
	for range 5 {
		mustToken(t, e.stable(appID, appSecret, false))
	}
	if st := e.f.Stats(appID); st.ClassicCalls != 7 || st.Issued != 4 {
		t.Errorf("Stats = %+v, want 7 classic calls and 4 issued", st)
	}
}

func TestClearQuota(t *testing.T) {
	e := newEnv(t, Config{DailyLimit: 1})
	tok := mustToken(t, e.classic(appID, appSecret))
	if r := e.classic(appID, appSecret); r.ErrCode != codeDailyQuota {
		t.Fatalf("second call: errcode %d, want %d", r.ErrCode, codeDailyQuota)
	}
	clear := func(body string) reply {
		return e.do(http.MethodPost, "/cgi-bin/clear_quota", url.Values{"access_token": {tok}}, body)
	}
	if r := clear(`{"appid":"` + appID + `"}`); r.ErrCode != 0 || r.ErrMsg != "ok" {
		t.Fatalf("clear_quota: %s", r.Body)
	}
	tok = mustToken(t, e.classic(appID, appSecret))

	for i := 2; i <= 10; i++ {
		if r := clear(`{"appid":"` + appID + `"}`); r.ErrCode != 0 {
			t.Fatalf("clear %d: %s", i, r.Body)
		}
	}
	if r := clear(`{"appid":"` + appID + `"}`); r.ErrCode != codeClearQuotaLimit {
		t.Fatalf("11th clear this month: errcode %d, want %d", r.ErrCode, codeClearQuotaLimit)
	}
	v2 := url.Values{"appid": {appID}, "appsecret": {appSecret}}
	if r := e.do(http.MethodPost, "/cgi-bin/clear_quota/v2", v2, ""); r.ErrCode != codeClearQuotaLimit {
		t.Errorf("v2 shares the monthly limit: errcode %d, want %d", r.ErrCode, codeClearQuotaLimit)
	}

	// A new Beijing month allows clearing again.
	e.clk.Set(time.Date(2025, 4, 1, 0, 0, 0, 0, beijing))
	tok = mustToken(t, e.classic(appID, appSecret))
	if r := e.do(http.MethodPost, "/cgi-bin/clear_quota/v2", v2, ""); r.ErrCode != 0 {
		t.Errorf("v2 with query parameters in a new month: %s", r.Body)
	}
	mustToken(t, e.classic(appID, appSecret))
}

func TestClearQuotaErrors(t *testing.T) {
	e := newEnv(t, Config{})
	tok := mustToken(t, e.classic(appID, appSecret))
	withToken := url.Values{"access_token": {tok}}
	tests := []struct {
		name   string
		method string
		path   string
		query  url.Values
		body   string
		code   int
	}{
		{"GET", "GET", "/cgi-bin/clear_quota", withToken, `{"appid":"` + appID + `"}`, codeRequireMethod},
		{"no token", "POST", "/cgi-bin/clear_quota", nil, `{"appid":"` + appID + `"}`, codeTokenMissing},
		{"other appid", "POST", "/cgi-bin/clear_quota", withToken, `{"appid":"wx-other"}`, codeInvalidAppID},
		{"malformed", "POST", "/cgi-bin/clear_quota", withToken, `{`, codeDataFormat},
		{"v2 GET", "GET", "/cgi-bin/clear_quota/v2", nil, `{"appid":"` + appID + `","appsecret":"` + appSecret + `"}`, codeRequireMethod},
		{"v2 unknown appid", "POST", "/cgi-bin/clear_quota/v2", nil, `{"appid":"wx-nobody","appsecret":"x"}`, codeInvalidAppID},
		{"v2 wrong secret", "POST", "/cgi-bin/clear_quota/v2", nil, `{"appid":"` + appID + `","appsecret":"nope"}`, codeInvalidSecret},
		{"v2 malformed", "POST", "/cgi-bin/clear_quota/v2", nil, `[1]`, codeDataFormat},
		{"v2 JSON", "POST", "/cgi-bin/clear_quota/v2", nil, `{"appid":"` + appID + `","appsecret":"` + appSecret + `"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(tt.method, tt.path, tt.query, tt.body); r.ErrCode != tt.code {
				t.Errorf("errcode %d (%s), want %d", r.ErrCode, r.Body, tt.code)
			}
		})
	}
}
