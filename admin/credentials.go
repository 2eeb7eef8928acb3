package admin

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// runtimeKinds are the kinds a credential added at run time may have. A
// third-party platform (component) brings callback routes and the
// authorizers it creates, which are set up at start: it is configured in
// the file.
var runtimeKinds = []string{"mp", "wecom"}

// credentialView is a credential as the admin API shows it: its state
// and settings, never its secret.
type credentialView struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Source is file, admin (stored), derived (a ticket) or authorizer
	// (created by a third-party platform's authorization).
	Source string `json:"source"`
	// State is ok, reported, unavailable, revoked, disabled, or error (a
	// stored credential that cannot be used: Error says why).
	State        string     `json:"state"`
	Error        string     `json:"error,omitempty"`
	IssuedAt     *time.Time `json:"issued_at,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	ServeUntil   *time.Time `json:"serve_until,omitempty"`
	NextRefresh  *time.Time `json:"next_refresh,omitempty"`
	FetchesToday int        `json:"fetches_today"`
	ForcedToday  int        `json:"forced_today"`
	// DailyQuota is WeChat's limit on the token endpoint's calls a day
	// (2000 for cgi-bin/token and gettoken), 0 where none is known.
	DailyQuota int          `json:"daily_quota,omitempty"`
	Cause      *token.Cause `json:"cause,omitempty"`
	Settings   *settings    `json:"settings,omitempty"`
	Updated    *time.Time   `json:"updated,omitempty"`
	By         string       `json:"by,omitempty"`
}

// settings are a credential's settings without its secrets.
type settings struct {
	AppID          string   `json:"appid,omitempty"`
	CorpID         string   `json:"corpid,omitempty"`
	Mode           string   `json:"mode,omitempty"`
	Tickets        []string `json:"tickets,omitempty"`
	AgentID        int64    `json:"agentid,omitempty"`
	ComponentAppID string   `json:"component_appid,omitempty"`
	Callback       bool     `json:"callback,omitempty"`
}

func settingsOf(cr config.Credential) *settings {
	return &settings{AppID: cr.AppID, CorpID: cr.CorpID, Mode: cr.Mode, Tickets: cr.Tickets, AgentID: cr.AgentID,
		ComponentAppID: cr.ComponentAppID, Callback: cr.Callback != nil}
}

func stamp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// view is the state of credential id as the token manager holds it.
func (a *Admin) view(id string, snap *token.Snapshot, now time.Time) credentialView {
	v := credentialView{ID: id, Kind: snap.Kind, Source: "admin", State: "ok", FetchesToday: snap.Fetches,
		ForcedToday: snap.Forced, Cause: snap.Cause}
	switch {
	case strings.Contains(id, "/tickets/"):
		v.Source = "derived"
	case snap.Owner != "":
		v.Source = "authorizer"
	case a.isFile(id):
		v.Source = "file"
	}
	switch {
	case snap.Revoked:
		v.State = "revoked"
	case !snap.Valid(now):
		v.State = "unavailable"
	case snap.Reported:
		v.State = "reported"
	}
	if snap.Token != "" {
		v.IssuedAt, v.ExpiresAt, v.ServeUntil = stamp(snap.IssuedAt), stamp(snap.ExpiresAt), stamp(snap.ServeUntil)
	}
	if !snap.Revoked {
		v.NextRefresh = stamp(snap.NextRefresh)
	}
	if v.Source != "derived" && (snap.Kind == "mp" || snap.Kind == "wecom") {
		v.DailyQuota = 2000
	}
	return v
}

func (a *Admin) isFile(id string) bool {
	_, ok := a.fileCreds[id]
	return ok
}

func (a *Admin) listCredentials(ctx context.Context, _ *http.Request, _ *actor) (int, any, error) {
	stored, err := a.loadCredentials(ctx)
	if err != nil {
		return 0, nil, err
	}
	now := a.now()
	out := []credentialView{}
	seen := map[string]bool{}
	for _, id := range a.cfg.Tokens.IDs() {
		snap, err := a.cfg.Tokens.Snapshot(id)
		if err != nil || snap.Owner != "" {
			continue // an authorizer: listed with its platform
		}
		v := a.view(id, snap, now)
		if sc := stored[id]; sc != nil && v.Source == "admin" {
			v.Updated, v.By = stamp(sc.Updated), sc.By
		}
		out = append(out, v)
		seen[id] = true
	}
	a.mu.Lock()
	failed := maps(a.failed)
	a.mu.Unlock()
	for id, sc := range stored {
		if seen[id] || a.isFile(id) {
			continue
		}
		v := credentialView{ID: id, Kind: sc.Credential.Kind, Source: "admin", State: "disabled", Updated: stamp(sc.Updated), By: sc.By}
		if !sc.Disabled {
			v.State, v.Error = "error", failed[id]
			if v.Error == "" {
				v.State = "starting" // stored by a peer a moment ago
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y credentialView) int { return strings.Compare(x.ID, y.ID) })
	return http.StatusOK, map[string]any{"credentials": out}, nil
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (a *Admin) showCredential(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	id := r.PathValue("id")
	stored, err := a.loadCredentials(ctx)
	if err != nil {
		return 0, nil, err
	}
	sc := stored[id]
	snap, serr := a.cfg.Tokens.Snapshot(id)
	var v credentialView
	switch {
	case serr == nil:
		v = a.view(id, snap, a.now())
	case sc != nil:
		v = credentialView{ID: id, Kind: sc.Credential.Kind, Source: "admin", State: "disabled"}
		if !sc.Disabled {
			v.State = "starting"
		}
	default:
		return 0, nil, token.ErrUnknown
	}
	if cr, ok := a.fileCreds[id]; ok {
		v.Settings = settingsOf(cr)
	} else if sc != nil {
		v.Settings, v.Updated, v.By = settingsOf(sc.Credential), stamp(sc.Updated), sc.By
	}
	return http.StatusOK, v, nil
}

// checkCredential validates a credential given to the admin API.
func checkCredential(cr *config.Credential) error {
	if !slices.Contains(runtimeKinds, cr.Kind) {
		return errorf(http.StatusBadRequest, "bad_request", "kind: want mp or wecom (a third-party platform is configured in the file), got \""+cr.Kind+"\"")
	}
	if cr.Callback != nil {
		return errorf(http.StatusBadRequest, "bad_request", "callback: set in the configuration file; a credential added at run time has no callback URL")
	}
	if err := config.ValidateCredential(cr); err != nil {
		return errorf(http.StatusBadRequest, "bad_request", err.Error())
	}
	return nil
}

func (a *Admin) addCredential(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	var cr config.Credential
	if err := decode(r, &cr); err != nil {
		return 0, nil, err
	}
	if err := checkCredential(&cr); err != nil {
		return 0, nil, err
	}
	info(ctx).target = cr.ID
	if a.isFile(cr.ID) {
		return 0, nil, errorf(http.StatusConflict, "conflict", "credential "+cr.ID+" is in the configuration file, which wins: change it there")
	}
	if _, err := a.cfg.Tokens.Snapshot(cr.ID); err == nil && !a.isApplied(cr.ID) {
		return 0, nil, errorf(http.StatusConflict, "conflict", "id "+cr.ID+" is taken by another credential")
	}
	now := a.now()
	err := modify(ctx, a.cfg.Store, credentialPrefix+cr.ID, func(sc *storedCredential, exists bool) error {
		if exists {
			return errorf(http.StatusConflict, "conflict", "credential "+cr.ID+" exists: change it with PUT")
		}
		*sc = storedCredential{Credential: cr, Created: now, Updated: now, By: who.Name}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return a.applied1(ctx, cr.ID, http.StatusCreated)
}

func (a *Admin) isApplied(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.applied[id]
	return ok
}

// applied1 applies the stored records at once, so the change is in force
// on this instance when the request returns (peers follow the store), and
// answers with the credential's state.
func (a *Admin) applied1(ctx context.Context, id string, status int) (int, any, error) {
	if err := a.sync(ctx); err != nil {
		return 0, nil, err
	}
	a.mu.Lock()
	why := a.failed[id]
	a.mu.Unlock()
	if why != "" {
		info(ctx).detail = "stored, but cannot be used: " + why
	}
	_, v, err := a.showCredential(ctx, withID(ctx, id), nil)
	return status, v, err
}

// withID is a request whose path value id is id.
func withID(ctx context.Context, id string) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	r.SetPathValue("id", id)
	return r
}

func (a *Admin) updateCredential(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	id := r.PathValue("id")
	var cr config.Credential
	if err := decode(r, &cr); err != nil {
		return 0, nil, err
	}
	if cr.ID != "" && cr.ID != id {
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "id: the body names "+cr.ID+", the path "+id+"; an id cannot change")
	}
	if a.isFile(id) {
		return 0, nil, errorf(http.StatusConflict, "conflict", "credential "+id+" is in the configuration file, which wins: change it there")
	}
	err := modify(ctx, a.cfg.Store, credentialPrefix+id, func(sc *storedCredential, exists bool) error {
		if !exists {
			return token.ErrUnknown
		}
		cr.ID = id
		if cr.Secret == "" {
			cr.Secret = sc.Credential.Secret // unchanged unless given
		}
		if err := checkCredential(&cr); err != nil {
			return err
		}
		sc.Credential, sc.Updated, sc.By = cr, a.now(), who.Name
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return a.applied1(ctx, id, http.StatusOK)
}

func (a *Admin) removeCredential(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	id := r.PathValue("id")
	if a.isFile(id) {
		return 0, nil, errorf(http.StatusConflict, "conflict", "credential "+id+" is in the configuration file, which wins: remove it there")
	}
	err := modify(ctx, a.cfg.Store, credentialPrefix+id, func(_ *storedCredential, exists bool) error {
		if !exists {
			return token.ErrUnknown
		}
		return errDelete
	})
	if err != nil {
		return 0, nil, err
	}
	if err := a.sync(ctx); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"removed": id}, nil
}

func (a *Admin) setCredentialDisabled(disabled bool) func(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	return func(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
		id := r.PathValue("id")
		if a.isFile(id) {
			return 0, nil, errorf(http.StatusConflict, "conflict", "credential "+id+" is in the configuration file, which wins: change it there")
		}
		err := modify(ctx, a.cfg.Store, credentialPrefix+id, func(sc *storedCredential, exists bool) error {
			if !exists {
				return token.ErrUnknown
			}
			sc.Disabled, sc.Updated, sc.By = disabled, a.now(), who.Name
			return nil
		})
		if err != nil {
			return 0, nil, err
		}
		return a.applied1(ctx, id, http.StatusOK)
	}
}

func (a *Admin) refresh(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	id := r.PathValue("id")
	snap, err := a.cfg.Tokens.Refresh(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.view(snap.ID, snap, a.now()), nil
}

func (a *Admin) unblock(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	snap, err := a.cfg.Tokens.Unblock(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.view(snap.ID, snap, a.now()), nil
}

// clearQuotaMonthly is how many clear_quota calls WeChat allows an
// account a month; past that it answers 48006.
const clearQuotaMonthly = 10

// beijing is UTC+8, the zone WeChat's days and months are counted in.
var beijing = time.FixedZone("UTC+8", 8*60*60)

func (a *Admin) clearQuota(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	id := r.PathValue("id")
	cr, ok := a.fileCreds[id]
	if !ok {
		stored, err := a.loadCredentials(ctx)
		if err != nil {
			return 0, nil, err
		}
		sc := stored[id]
		if sc == nil {
			if _, err := a.cfg.Tokens.Snapshot(id); err == nil {
				return 0, nil, errorf(http.StatusBadRequest, "bad_request", "clear_quota needs an Official Account or Mini Program credential with its AppSecret; "+id+" is not one")
			}
			return 0, nil, token.ErrUnknown
		}
		cr = sc.Credential
	}
	if cr.Kind != "mp" || a.cfg.ClearQuota == nil {
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "clear_quota is for Official Accounts and Mini Programs (kind mp); "+id+" is "+cr.Kind)
	}
	month := a.now().In(beijing).Format("2006-01")
	key := quotaPrefix + id + "/" + month
	var used int
	// Counted before the call, so that two operators at once cannot
	// both take the last one; a call that fails still counts, as it may
	// have counted at WeChat.
	err := modify(ctx, a.cfg.Store, key, func(q *quotaCount, _ bool) error {
		if q.Calls >= clearQuotaMonthly {
			return errorf(http.StatusTooManyRequests, "quota_spent", "clear_quota was used 10 times this month (Beijing time) for "+id+", all WeChat allows")
		}
		q.Calls++
		used = q.Calls
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	info(ctx).detail = "clear_quota " + strconv.Itoa(used) + " of 10 this month"
	if err := a.cfg.ClearQuota(ctx, cr); err != nil {
		if wechat.ErrCode(err) == 48006 {
			// WeChat's count says the month is spent: follow it.
			_ = modify(ctx, a.cfg.Store, key, func(q *quotaCount, _ bool) error { q.Calls = clearQuotaMonthly; return nil })
			return 0, nil, errorf(http.StatusTooManyRequests, "quota_spent", "WeChat refused clear_quota: 48006, this month's 10 are spent")
		}
		return 0, nil, err
	}
	snap, err := a.cfg.Tokens.Unblock(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	v := a.view(snap.ID, snap, a.now())
	return http.StatusOK, map[string]any{"credential": v, "clear_quota_used_this_month": used, "clear_quota_monthly": clearQuotaMonthly}, nil
}
