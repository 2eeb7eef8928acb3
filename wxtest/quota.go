package wxtest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// clearQuotaMonthly is how many clear_quota calls an app gets per month.
const clearQuotaMonthly = 10

// maxBody bounds the JSON bodies the fake reads; real ones are tiny.
const maxBody = 64 << 10

// beijing is the zone WeChat's days and months are counted in.
var beijing = time.FixedZone("CST", 8*60*60)

// beijingDay names the Beijing calendar day of t, as yyyymmdd.
func beijingDay(t time.Time) int {
	y, m, d := t.In(beijing).Date()
	return y*10000 + int(m)*100 + d
}

// beijingMonth names the Beijing calendar month of t, as yyyymm.
func beijingMonth(t time.Time) int {
	y, m, _ := t.In(beijing).Date()
	return y*100 + int(m)
}

// quota is an account's daily call count and monthly clear_quota count.
// Both reset lazily, when a call finds the day or month has changed.
type quota struct {
	day    int
	calls  int
	month  int
	clears int
}

// take counts one call at now and reports whether it is within limit.
// Calls past the limit still count, as every call does on the platform.
func (q *quota) take(now time.Time, limit int) bool {
	if d := beijingDay(now); d != q.day {
		q.day, q.calls = d, 0
	}
	q.calls++
	return q.calls <= limit
}

// clear resets the day's count, if this month's clears are not spent.
func (q *quota) clear(now time.Time) bool {
	if m := beijingMonth(now); m != q.month {
		q.month, q.clears = m, 0
	}
	if q.clears >= clearQuotaMonthly {
		return false
	}
	q.clears++
	q.calls = 0
	return true
}

// clearQuotaRequest is the body of both clear_quota endpoints.
type clearQuotaRequest struct {
	AppID     string `json:"appid"`
	AppSecret string `json:"appsecret"`
}

// readJSON decodes a small JSON body into v. An empty body leaves v as is,
// so that callers may fall back to query parameters.
// decodeBody reads a JSON request body into a T. On a malformed body it
// returns the zero T with the error, so an endpoint can still count the
// call and answer 47001 after the checks that come first.
func decodeBody[T any](r *http.Request) (T, error) {
	var v T
	if err := readJSON(r, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// serveNamed answers a POST token endpoint whose JSON body names the
// account it is for. The body is read first because counters and faults
// are per account, and the account is in the body: the call is counted
// for it (count), meets its fault (a malformed body names no account, so
// it meets only a fault set for every account), then a method other than
// POST is answered 43002, a malformed body 47001, and anything else by
// answer.
func serveNamed[T any](f *Fake, w http.ResponseWriter, r *http.Request, account func(T) string,
	count func(*Stats, T), answer func(*http.Request, T) any) {
	req, bodyErr := decodeBody[T](r)
	id := account(req)
	f.count(id, func(s *Stats) { count(s, req) })
	if f.applyFault(w, r, id) {
		return
	}
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	if bodyErr != nil {
		writeJSON(w, fail(codeDataFormat))
		return
	}
	writeJSON(w, answer(r, req))
}

func readJSON(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(data) > maxBody {
		return errors.New("body too large")
	}
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

// serveClearQuota answers POST /cgi-bin/clear_quota?access_token=.., which
// resets the daily count of the app that owns the token. The daily limit on
// forced stable_token refreshes is a separate rule and is not reset.
func (f *Fake) serveClearQuota(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	var req clearQuotaRequest
	bodyErr := readJSON(r, &req)
	writeJSON(w, f.clearQuota(r, req, bodyErr))
}

func (f *Fake) clearQuota(r *http.Request, req clearQuotaRequest, bodyErr error) apiError {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	owner, e, valid := f.useToken(r, now)
	switch {
	case !valid:
		return e
	case bodyErr != nil:
		return fail(codeDataFormat)
	case req.AppID != owner.id:
		// A token only clears the quota of its own account.
		return fail(codeInvalidAppID)
	case !owner.quota.clear(now):
		return fail(codeClearQuotaLimit)
	}
	return okReply
}

// serveClearQuotaV2 answers POST /cgi-bin/clear_quota/v2, which takes the
// AppSecret instead of a token. The parameters are read from a JSON body,
// or from the query string when the body is empty.
func (f *Fake) serveClearQuotaV2(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	q := r.URL.Query()
	req := clearQuotaRequest{AppID: q.Get("appid"), AppSecret: q.Get("appsecret")}
	if err := readJSON(r, &req); err != nil {
		writeJSON(w, fail(codeDataFormat))
		return
	}
	writeJSON(w, f.clearQuotaV2(req))
}

func (f *Fake) clearQuotaV2(req clearQuotaRequest) apiError {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.app(req.AppID)
	if a == nil {
		return fail(codeInvalidAppID)
	}
	if e, good := checkAppSecret(a, req.AppSecret); !good {
		return e
	}
	if !a.quota.clear(f.cfg.now()) {
		return fail(codeClearQuotaLimit)
	}
	return okReply
}
