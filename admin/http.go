package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/token"
)

// maxBody bounds an admin request's body.
const maxBody = 64 << 10

// apiError is a refusal or failure with its HTTP status; its body has
// the API's error shape, {"error":{"code","message"}}.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, msg string) *apiError { return &apiError{status, code, msg} }

var (
	errNoKey  = errorf(http.StatusUnauthorized, "unauthorized", "missing admin key: send Authorization: Bearer <admin key>")
	errBadKey = errorf(http.StatusUnauthorized, "unauthorized", "unknown admin key")
)

// route is one admin endpoint.
type route struct {
	pattern string // "METHOD /v1/admin/..."
	action  string // the audit log's name for it
	role    string // the least role allowed
	h       func(ctx context.Context, r *http.Request, who *actor) (int, any, error)
}

// request is what a handler learned, for the audit log.
type requestKey struct{}

type requestInfo struct {
	target string
	detail string
}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// Handler returns the admin API, to be served under /v1/admin/.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.Handle(rt.pattern, a.serve(rt))
	}
	mux.Handle("/", a.serve(route{action: "unknown", role: config.RoleViewer, h: func(context.Context, *http.Request, *actor) (int, any, error) {
		return 0, nil, errorf(http.StatusNotFound, "not_found", "no such admin endpoint")
	}}))
	return mux
}

func (a *Admin) routes() []route {
	v, o, ad := config.RoleViewer, config.RoleOperator, config.RoleAdmin
	return []route{
		{"GET /v1/admin/whoami", "whoami", v, a.whoami},
		{"GET /v1/admin/credentials", "credential.list", v, a.listCredentials},
		{"POST /v1/admin/credentials", "credential.add", ad, a.addCredential},
		{"GET /v1/admin/credentials/{id}", "credential.show", v, a.showCredential},
		{"PUT /v1/admin/credentials/{id}", "credential.update", ad, a.updateCredential},
		{"DELETE /v1/admin/credentials/{id}", "credential.remove", ad, a.removeCredential},
		{"POST /v1/admin/credentials/{id}/disable", "credential.disable", o, a.setCredentialDisabled(true)},
		{"POST /v1/admin/credentials/{id}/enable", "credential.enable", o, a.setCredentialDisabled(false)},
		{"POST /v1/admin/credentials/{id}/refresh", "credential.refresh", o, a.refresh},
		{"POST /v1/admin/credentials/{id}/unblock", "credential.unblock", o, a.unblock},
		{"POST /v1/admin/credentials/{id}/clear_quota", "credential.clear_quota", o, a.clearQuota},
		{"GET /v1/admin/clients", "client.list", v, a.listClients},
		{"POST /v1/admin/clients", "client.add", ad, a.addClient},
		{"PUT /v1/admin/clients/{name}", "client.update", ad, a.updateClient},
		{"DELETE /v1/admin/clients/{name}", "client.remove", ad, a.removeClient},
		{"POST /v1/admin/clients/{name}/rotate", "client.rotate", ad, a.rotateClient},
		{"POST /v1/admin/clients/{name}/disable", "client.disable", o, a.setClientDisabled(true)},
		{"POST /v1/admin/clients/{name}/enable", "client.enable", o, a.setClientDisabled(false)},
		{"GET /v1/admin/audit", "audit.list", v, a.listAudit},
		{"GET /v1/admin/platforms", "platform.list", v, a.listPlatforms},
		{"GET /v1/admin/platforms/{id}/authorizers", "platform.authorizers", v, a.listAuthorizers},
		{"GET /v1/admin/upstreams", "upstream.list", v, a.listUpstreams},
		{"GET /v1/admin/deadletters", "deadletter.list", v, a.listDeadLetters},
		{"POST /v1/admin/deadletters/{id}/redrive", "deadletter.redrive", o, a.redrive},
	}
}

// Identity is the holder of an admin key.
type Identity struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// ErrUnknownKey is Authenticate's answer to a key that is not an admin's.
var ErrUnknownKey = errors.New("unknown admin key")

// Authenticate returns the holder of an admin key: the dashboard checks a
// login with it, and then sends the key with each request it forwards
// here, where it is checked again.
func (a *Admin) Authenticate(key string) (Identity, error) {
	who := a.admins[sha256.Sum256([]byte(key))]
	if who == nil {
		return Identity{}, ErrUnknownKey
	}
	return Identity(*who), nil
}

// authenticate returns the admin whose key the request bears.
func (a *Admin) authenticate(r *http.Request) (*actor, error) {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		return nil, errNoKey
	}
	return a.actorOf(key)
}

func (a *Admin) actorOf(key string) (*actor, error) {
	who := a.admins[sha256.Sum256([]byte(key))]
	if who == nil {
		return nil, errBadKey
	}
	return who, nil
}

// serve runs one route: authentication, role, the handler, the answer,
// and the audit entry (every change, and every refusal, reads included).
func (a *Admin) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{target: r.PathValue("id") + r.PathValue("name")}
		ctx := context.WithValue(r.Context(), requestKey{}, ri)
		who, err := a.authenticate(r)
		if err == nil && !who.may(rt.role) {
			err = errorf(http.StatusForbidden, "forbidden", "role "+who.Role+" may not "+rt.action+"; it needs "+rt.role)
		}
		status, body := 0, any(nil)
		if err == nil {
			status, body, err = rt.h(ctx, r, who)
		}
		if err != nil {
			status, body = errorBody(err)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="wxtoken admin"`)
			}
		}
		writeJSON(w, status, body)
		if err == nil && r.Method == http.MethodGet {
			return // reads are not logged one by one: a dashboard polls
		}
		ev := Event{Action: rt.action, Target: ri.target, Status: status, Detail: ri.detail, Remote: remote(r), Result: ResultOK}
		if rt.pattern == "" {
			ev.Target = r.Method + " " + r.URL.Path
		}
		if who != nil {
			ev.Actor, ev.Role = who.Name, who.Role
		}
		if err != nil {
			ev.Result = ResultRefused
			if status >= 500 || status == http.StatusBadGateway {
				ev.Result = ResultFailed
			}
			ev.Detail = strings.TrimSpace(ev.Detail + " " + err.Error())
		}
		if aerr := a.audit.append(context.WithoutCancel(ctx), ev); aerr != nil {
			a.log.Error("admin: audit entry not written", "action", ev.Action, "actor", ev.Actor, "err", aerr)
		}
	})
}

func remote(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return host
}

// errorBody maps an error to its status and body.
func errorBody(err error) (int, any) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, token.ErrUnknown):
		ae = errorf(http.StatusNotFound, "not_found", "unknown credential")
	case errors.Is(err, store.ErrConflict), errors.Is(err, errBusy):
		ae = errorf(http.StatusConflict, "conflict", "changed concurrently; try again")
	case errors.As(err, new(*http.MaxBytesError)):
		ae = errorf(http.StatusRequestEntityTooLarge, "too_large", "request body over 64 KiB")
	case errors.As(err, new(*token.BlockedError)), errors.As(err, new(*token.LimitedError)):
		ae = errorf(http.StatusTooManyRequests, "refused", err.Error())
	case errors.As(err, new(*token.StoreError)):
		ae = errorf(http.StatusServiceUnavailable, "store_unavailable", err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		ae = errorf(http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		ae = errorf(http.StatusBadGateway, "failed", err.Error())
	}
	return ae.status, map[string]any{"error": map[string]string{"code": ae.code, "message": ae.msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads one JSON object into v, refusing unknown fields: a typo in
// an admin request must not be silently ignored.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return err
		}
		return errorf(http.StatusBadRequest, "bad_request", "request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "bad_request", "request body is empty: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad_request", "malformed JSON: "+err.Error())
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad_request", "malformed JSON: trailing data after the object")
	}
	return nil
}

// decodeOptional is decode for a body that may be empty.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decode(r, v)
}

func (a *Admin) whoami(_ context.Context, _ *http.Request, who *actor) (int, any, error) {
	return http.StatusOK, who, nil
}

func (a *Admin) listAudit(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	q := r.URL.Query()
	f := Filter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Result: q.Get("result"), Before: q.Get("before"), Limit: 50}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, errorf(http.StatusBadRequest, "bad_request", "limit: want 1 to 1000")
		}
		f.Limit = n
	}
	switch f.Result {
	case "", ResultOK, ResultRefused, ResultFailed:
	default:
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "result: want ok, refused or failed")
	}
	events, next, err := a.audit.list(ctx, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"events": events, "next": next}, nil
}

func (a *Admin) now() time.Time { return a.cfg.Now() }
