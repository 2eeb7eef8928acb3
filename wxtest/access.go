package wxtest

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// SetWhitelist sets the IPs allowed to call the token endpoints. With none,
// every caller is allowed; otherwise classic and stable calls from another
// address answer 40164, gettoken calls answer 60020 and the third-party
// platform's endpoints answer 61004, all naming the caller's IP as the
// platform does. Requests made through Client come from
// 127.0.0.1. The list replaces any earlier one and applies to every account,
// as one egress IP usually serves them all.
func (f *Fake) SetWhitelist(ips ...string) {
	list := make(map[string]bool, len(ips))
	for _, ip := range ips {
		list[normalizeIP(ip)] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.whitelist = list
}

// callerIP returns the IP of the request's peer, in normal form.
func callerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return normalizeIP(host)
}

// normalizeIP lets "::ffff:127.0.0.1" match "127.0.0.1" and drops zones;
// anything that is not an IP is compared as written.
func normalizeIP(s string) string {
	s = strings.TrimSpace(s)
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return addr.Unmap().WithZone("").String()
}

// checkIP answers 40164 (or 60020 for WeCom) when the caller is not on the
// whitelist. The caller holds f.mu.
func (f *Fake) checkIP(r *http.Request, wecom bool) (apiError, bool) {
	if len(f.whitelist) == 0 {
		return apiError{}, true
	}
	ip := callerIP(r)
	if f.whitelist[ip] {
		return apiError{}, true
	}
	if wecom {
		return failf(codeWeComIPDenied, "not allow to access from your ip, from ip: %s", ip), false
	}
	return failf(codeIPNotWhitelisted, "invalid ip %s, not in whitelist", ip), false
}

// requireMethod answers 43002 unless the request uses method.
// allowMethod answers 43002 and reports false unless r uses method.
func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	writeJSON(w, failf(codeRequireMethod, "require %s method", method))
	return false
}

// checkAppSecret answers 40125 for a wrong AppSecret and 40243 for a frozen
// one. The wrong-secret check comes first: freezing does not tell a caller
// who lacks the secret anything about it.
func checkAppSecret(a *account, secret string) (apiError, bool) {
	if secret != a.secret {
		return fail(codeInvalidSecret), false
	}
	if a.frozen {
		return fail(codeSecretFrozen), false
	}
	return apiError{}, true
}

// app returns the Official Account or Mini Program registered as appid, or
// nil; WeCom corps are not apps. The caller holds f.mu.
func (f *Fake) app(appid string) *account {
	if a := f.accounts[appid]; a != nil && a.isApp {
		return a
	}
	return nil
}

// corp returns the WeCom corp registered as corpid, or nil. The caller holds
// f.mu.
func (f *Fake) corp(corpid string) *account {
	if a := f.accounts[corpid]; a != nil && a.corp != nil {
		return a
	}
	return nil
}

// count applies fn to the stats of id, if id is a known account, so that
// calls are counted even when a fault or an error answers them.
func (f *Fake) count(id string, fn func(*Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.accounts[id]; a != nil {
		fn(&a.stats)
	}
}
