package facade

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/token"
)

// What expires_in to answer.
//
// Every SDK caches a token for expires_in minus a margin of its own
// (WECHAT.md §8): silenceper/wechat 1500 s for classic, WeCom, component
// tokens and tickets, 300 s for stable tokens, 30 s for authorizers, and
// its Redis cache fails on a TTL that is not positive; Senparc up to
// 600 s; WxJava 200 s; co-wechat-api 10 s; easywechat none (100 s for
// a component token); wechatpy refetches once under 60 s are left. The
// token wxtoken hands out may be used until its ServeUntil, R from now: a
// classic, WeCom or authorizer token dies an overlap (5 min) after our
// next planned refresh, so in the last minutes before that refresh R is
// only a few minutes.
//
// No one value is right for every SDK: to keep easywechat (margin 0) from
// holding a dead token, expires_in must not exceed R; for silenceper's
// Redis cache to take it, it must exceed 1500 s; and R drops under 1500 s
// before every refresh. So the facade answers R less a second for the
// answer's transit (ServeUntil of a ticket is its expiry, with no safety
// margin, and the SDK counts from when it reads the answer), in whole
// seconds rounded down, unless the client's configuration names its SDK
// (sdk: silenceper), which then gets that plus the SDK's margin for the
// endpoint. A token with less than minLeft left is not handed out at all:
// the request waits for its successor (current), so the answer is
// always at least 1 s plus the margin, and never 0, which some caches
// take as "keep forever" and silenceper's Redis cache refuses.
// Either way, no SDK caches a token beyond R. With plain R, an SDK whose
// margin exceeds what is left simply caches nothing and asks again on
// its next call (silenceper's memory cache, WxJava, Senparc,
// co-wechat-api, wechatpy): a local request to the facade, never a fetch
// from WeChat. Only silenceper with its Redis cache would fail, which is
// why its clients name it.

// endpoint is a token endpoint of the facade, as far as SDKs' margins
// differ between them.
type endpoint int

const (
	classicToken endpoint = iota
	stableToken
	wecomToken
	componentToken
	authorizerToken
	ticketEndpoint
	endpoints
)

// sdkMargins are the seconds each SDK subtracts from expires_in before
// caching, by endpoint, from the SDKs' sources (WECHAT.md §8). Senparc is
// not listed: its margin depends on the value itself, and it is safe with
// the default.
var sdkMargins = map[string][endpoints]int64{
	// credential/default_access_token.go (classic 1500, stable 300,
	// WeCom 1500), credential/*_js_ticket.go (1500),
	// openplatform/context/accessToken.go (component 1500, authorizer 30).
	"silenceper":    {1500, 300, 1500, 1500, 30, 1500},
	"wxjava":        {200, 200, 200, 200, 200, 200},
	"co-wechat-api": {10, 10, 10, 10, 10, 10},
	"easywechat":    {0, 0, 0, 100, 0, 0},
	"wechatpy":      {60, 60, 60, 60, 60, 60},
}

// SDKs are the names a client's sdk setting may take ("" for none).
func SDKs() []string {
	var out []string
	for name := range sdkMargins {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// CheckSDK reports an sdk setting the facade does not know.
func CheckSDK(name string) error {
	if _, ok := sdkMargins[name]; name != "" && !ok {
		return fmt.Errorf("unknown sdk %q (want one of %s, or none)", name, strings.Join(SDKs(), ", "))
	}
	return nil
}

// transit is the time kept in hand for an answer to reach the SDK.
const transit = time.Second

// minLeft is the least a token must have left to be handed out.
const minLeft = transit + time.Second

// expiresIn is the expires_in to answer a client whose SDK is sdk ("" if
// unknown) for snap at ep, at now.
func expiresIn(snap *token.Snapshot, now time.Time, sdk string, ep endpoint) int64 {
	r := max(int64((snap.ExpiresIn(now)-transit)/time.Second), 1)
	return r + sdkMargins[sdk][ep]
}
