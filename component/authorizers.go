package component

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wxtoken/wxtoken/token"
)

// authPage is WeChat's authorization page for a pre_auth_code.
func authPage(appid, preAuthCode, redirectURI string, authType int) string {
	q := url.Values{"component_appid": {appid}, "pre_auth_code": {preAuthCode}, "redirect_uri": {redirectURI}}
	if authType > 0 {
		q.Set("auth_type", strconv.Itoa(authType))
	}
	return "https://mp.weixin.qq.com/cgi-bin/componentloginpage?" + q.Encode()
}

// Import is one authorizer carried over from another system: an account
// of a third-party platform with its refresh token, or a corp that
// installed a WeCom suite with its permanent code.
type Import struct {
	AppID         string `json:"authorizer_appid,omitempty"`
	RefreshToken  string `json:"authorizer_refresh_token,omitempty"`
	CorpID        string `json:"auth_corpid,omitempty"`
	PermanentCode string `json:"permanent_code,omitempty"`
}

// Authorizer is the appid or corpid the import names.
func (i Import) Authorizer() string { return i.AppID + i.CorpID }

// state is the durable state the import carries.
func (i Import) state() string { return i.RefreshToken + i.PermanentCode }

// check reports what is wrong with i for a platform of family f, or "".
func (i Import) check(f *family) string {
	suite := f.kind == KindSuite
	want := "an authorizer_appid of [A-Za-z0-9_-]{1,64} and an authorizer_refresh_token"
	if suite {
		want = "an auth_corpid of [A-Za-z0-9_-]{1,64} and a permanent_code"
	}
	ownID, ownState, otherID, otherState := i.AppID, i.RefreshToken, i.CorpID, i.PermanentCode
	if suite {
		ownID, ownState, otherID, otherState = otherID, otherState, ownID, ownState
	}
	if !validAppID(ownID) || ownState == "" || len(ownState) > 1024 || otherID != "" || otherState != "" {
		return want
	}
	return ""
}

// What Import did with one authorizer.
const (
	// Imported: the authorizer was new here (or its authorization had
	// been withdrawn) and is now held with the given refresh token.
	Imported = "imported"
	// Replaced: the authorizer was held, and its refresh token was
	// replaced, as the caller asked.
	Replaced = "replaced"
	// SkippedExisting: the authorizer is held already; its refresh token
	// was left as it was.
	SkippedExisting = "skipped_existing"
)

// ImportResult is what Import did with one authorizer.
type ImportResult struct {
	AppID  string `json:"authorizer_appid,omitempty"`
	CorpID string `json:"auth_corpid,omitempty"`
	Result string `json:"result"`
}

// MaxImport bounds one Import call.
const MaxImport = 1000

// ErrInvalidImport reports an import list to fix before anything is
// imported.
var ErrInvalidImport = errors.New("component: invalid import")

// importWorkers bounds how many authorizers one Import stores at a time.
// Each is a durable write under its own lease; made side by side they are
// committed together (one fsync for many in the embedded store, pipelined
// round trips with Redis), so that an import of thousands is not a queue
// of fsyncs.
const importWorkers = 32

// Import adds authorizers with their refresh tokens (a suite's corps with
// their permanent codes). Each is stored
// durably and refreshed at once. An authorizer already held, and not
// revoked, keeps the refresh token it has unless replace is set: the
// stored one is the only copy of a live authorization, and one bad
// import over it would lose the authorization for good (WeChat answers
// 61023 to the next refresh). Authorizers are stored several at a time;
// at the first failure no more are started, and Import returns, in list
// order, what it did with those it finished, and the failure of the
// earliest in the list that failed.
func (p *Platform) Import(ctx context.Context, list []Import, replace bool) ([]ImportResult, error) {
	if len(list) > MaxImport {
		return nil, fmt.Errorf("%w: at most %d authorizers per import, got %d", ErrInvalidImport, MaxImport, len(list))
	}
	seen := make(map[string]bool, len(list))
	for i, a := range list {
		if want := a.check(p.fam); want != "" {
			return nil, fmt.Errorf("%w: authorizers[%d]: want %s", ErrInvalidImport, i, want)
		}
		if seen[a.Authorizer()] {
			return nil, fmt.Errorf("%w: authorizers[%d]: %s is listed twice", ErrInvalidImport, i, a.Authorizer())
		}
		seen[a.Authorizer()] = true
	}
	results := make([]string, len(list))
	errs := make([]error, len(list))
	var failed atomic.Bool
	var wg sync.WaitGroup
	slots := make(chan struct{}, importWorkers)
	for i, a := range list {
		slots <- struct{}{}
		if failed.Load() {
			<-slots
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			results[i], errs[i] = p.importOne(ctx, a, replace)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("authorizers[%d] (%s): %w", i, a.Authorizer(), errs[i])
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	done := make([]ImportResult, 0, len(list))
	var first error
	for i, a := range list {
		switch {
		case errs[i] != nil && first == nil:
			first = errs[i]
		case results[i] != "":
			done = append(done, ImportResult{AppID: a.AppID, CorpID: a.CorpID, Result: results[i]})
		}
	}
	return done, first
}

// importOne stores one authorizer and says what it did.
func (p *Platform) importOne(ctx context.Context, a Import, replace bool) (string, error) {
	result := Imported
	if s, err := p.tokens.Snapshot(AuthorizerID(p.cfg.ID, a.Authorizer())); err == nil && !s.Revoked {
		if !replace {
			return SkippedExisting, nil
		}
		result = Replaced
	}
	err := p.tokens.Add(ctx, p.authorizer(a.Authorizer()), &token.Seed{State: a.state(), KeepLive: !replace})
	if errors.Is(err, token.ErrLive) {
		// Stored by a peer, or by a push, since the snapshot above.
		return SkippedExisting, nil
	}
	if err != nil {
		return "", err
	}
	return result, nil
}

// appIDPattern is what an authorizer appid may look like. It becomes a
// credential id: a store key, a URL path segment and a JSON string the
// API writes unescaped, so nothing else is let in.
var appIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validAppID(s string) bool { return appIDPattern.MatchString(s) }

// Page lists this platform's authorizers in appid order: up to limit after
// the appid cursor (exclusive), and the cursor of the next page ("" at the
// end). ids must be sorted, as the token manager's IDs are: the platform's
// authorizers are a run of them ("{platform}/" and the appid), and a page
// starts where the cursor falls in it and reads only as far as it needs,
// so that paging through a hundred thousand authorizers is not quadratic.
func (p *Platform) Page(ids []string, cursor string, limit int) (page []*token.Snapshot, next string) {
	prefix := AuthorizerID(p.cfg.ID, "")
	start, found := slices.BinarySearch(ids, prefix+cursor)
	if found {
		start++
	}
	for _, id := range ids[start:] {
		appid, ok := strings.CutPrefix(id, prefix)
		if !ok {
			break
		}
		s, err := p.tokens.Snapshot(id)
		if err != nil || s.Owner != p.cfg.ID || strings.Contains(appid, "/") {
			continue // a ticket of an authorizer
		}
		if len(page) == limit {
			return page, strings.TrimPrefix(page[len(page)-1].ID, prefix)
		}
		page = append(page, s)
	}
	return page, ""
}
