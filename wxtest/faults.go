package wxtest

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Fault is a failure injected into the token-issuing endpoints (classic
// token, stable_token, WeCom gettoken, the third-party platform's
// api_component_token and api_authorizer_token, and WeCom's
// get_suite_token, get_corp_token and get_provider_token). It acts before
// any other check: a faulted call issues no token and uses no quota, but it
// is counted in the endpoint's Stats counter.
//
// Delay applies first. After it, Hang wins over Status, and Status over
// ErrCode; a Fault with only a Delay lets the call proceed normally.
type Fault struct {
	// ErrCode answers {"errcode":ErrCode,"errmsg":...} with HTTP 200, the
	// errmsg being the platform's wording where the fake knows it (for
	// example -1, 40013, 45009, 45011).
	ErrCode int

	// Status answers this HTTP status with a short plain-text body, as a
	// gateway in front of WeChat would. It must be a valid status code;
	// 200 gives a success status with a body that is not JSON.
	Status int

	// Delay stalls the call this long before answering, normally or with the
	// fault. It waits on a real timer (the bubble's fake one under
	// testing/synctest), not on Config.Now, and ends early, without an
	// answer, when the request's context is done.
	Delay time.Duration

	// Hang never answers; the call returns only when the request's context
	// is done.
	Hang bool

	// Count limits the fault to the next Count matching calls; zero means
	// until ClearFault or another SetFault for the same scope.
	Count int
}

// faultState is a Fault with the calls it has left.
type faultState struct {
	Fault
	left int // meaningful only when Count > 0
}

// SetFault injects ft into the token-issuing calls of appid (an appid,
// corpid, component appid, authorizer appid, suite id, or "suiteid/corpid"
// for a corp's authorization of a suite), or of every account when appid
// is "". It replaces any fault set earlier for the same scope. A fault for
// an account wins over the one for every account. An api_authorizer_token
// call meets the fault of its authorizer appid, else that of its component
// appid, else the one for every account; a get_corp_token call, or a
// gettoken call with a custom app's permanent code, meets the fault of
// "suiteid/corpid", else that of the suite id, else the one for every
// account.
func (f *Fake) SetFault(appid string, ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[appid] = &faultState{Fault: ft, left: ft.Count}
}

// ClearFault removes the fault set for appid ("" for the one that applies
// to every account).
func (f *Fake) ClearFault(appid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.faults, appid)
}

// takeFault returns the fault that applies to a call for the given ids,
// the first id with a fault winning, else the fault for every account, and
// uses up one of its Count.
func (f *Fake) takeFault(ids ...string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, fs := "", f.faults[""]
	for _, id := range ids {
		if found := f.faults[id]; found != nil {
			key, fs = id, found
			break
		}
	}
	if fs == nil {
		return Fault{}, false
	}
	if fs.Count > 0 {
		fs.left--
		if fs.left <= 0 {
			delete(f.faults, key)
		}
	}
	return fs.Fault, true
}

// applyFault runs the fault for a call of the given ids (see takeFault), if
// there is one, and reports whether it answered (or abandoned) the call.
func (f *Fake) applyFault(w http.ResponseWriter, r *http.Request, ids ...string) bool {
	ft, found := f.takeFault(ids...)
	if !found {
		return false
	}
	ctx := r.Context()
	if ft.Delay > 0 && !sleep(ctx, ft.Delay) {
		return true
	}
	switch {
	case ft.Hang:
		<-ctx.Done()
		return true
	case ft.Status != 0:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(ft.Status)
		fmt.Fprintf(w, "%d %s\n", ft.Status, http.StatusText(ft.Status))
		return true
	case ft.ErrCode != 0:
		writeJSON(w, fail(ft.ErrCode))
		return true
	}
	return false
}

// sleep waits for d or until ctx is done, and reports whether the full
// wait elapsed. It uses a timer rather than Config.Now so that it works
// under testing/synctest, where the bubble's clock drives timers.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
