package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wxtoken/wxtoken/component"
	"github.com/wxtoken/wxtoken/token"
)

// Platform is what the API needs of a third-party platform.
type Platform interface {
	PreAuth(ctx context.Context, redirectURI string, authType int) (code string, expiresIn time.Duration, pageURL string, err error)
	Import(ctx context.Context, list []component.Import, replace bool) ([]component.ImportResult, error)
	Page(ids []string, cursor string, limit int) ([]*token.Snapshot, string)
}

var _ Platform = (*component.Platform)(nil)

func (s *Server) platform(r *http.Request) (Platform, error) {
	id := r.PathValue("id")
	if _, err := s.authorize(r, id, ""); err != nil {
		return nil, err
	}
	p := s.platforms[id]
	if p == nil {
		return nil, token.ErrUnknown
	}
	return p, nil
}

func (s *Server) preAuthCode(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platform(r)
	if err != nil {
		return err
	}
	var req struct {
		RedirectURI string `json:"redirect_uri"`
		AuthType    int    `json:"auth_type"`
	}
	if err := decodeJSON(w, r, s.maxBody, &req); err != nil {
		return err
	}
	if u, err := url.Parse(req.RedirectURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &badRequest{"redirect_uri must be an absolute http(s) URL"}
	}
	code, in, page, err := p.PreAuth(r.Context(), req.RedirectURI, req.AuthType)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"pre_auth_code": code, "expires_in": int64(in / time.Second), "url": page})
	return nil
}

// maxImportBody fits MaxImport authorizers.
const maxImportBody = 512 << 10

// importAuthorizers takes authorizers migrated from another system. It
// needs the client's import permission for the platform; replacing the
// refresh token of an authorizer held already also needs the client to be
// allowed that authorizer. Both are checked before anything is written.
func (s *Server) importAuthorizers(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	c, err := s.clients.authenticate(r)
	if err != nil {
		return err
	}
	if !c.imports[id] {
		return &notPermitted{"importing authorizers into " + id + " needs the import permission: list it in the client's import (import: [" + id + "]); being allowed to read the platform does not grant it"}
	}
	p := s.platforms[id]
	if p == nil {
		return token.ErrUnknown
	}
	var req struct {
		Authorizers []component.Import `json:"authorizers"`
		Replace     bool               `json:"replace"`
	}
	if err := decodeJSON(w, r, maxImportBody, &req); err != nil {
		return err
	}
	if len(req.Authorizers) == 0 {
		return &badRequest{"authorizers is required: [{authorizer_appid, authorizer_refresh_token}], or for a WeCom suite [{auth_corpid, permanent_code}]"}
	}
	if req.Replace {
		for _, a := range req.Authorizers {
			if !c.allowed(component.AuthorizerID(id, a.Authorizer()), id) {
				return &notPermitted{"replace needs the client to be allowed every authorizer listed (" + id + "/* or the appid); it is not allowed " + a.Authorizer()}
			}
		}
	}
	done, err := p.Import(r.Context(), req.Authorizers, req.Replace)
	count := map[string]int{component.Imported: 0, component.Replaced: 0, component.SkippedExisting: 0}
	for _, d := range done {
		count[d.Result]++
		if d.Result == component.Replaced {
			s.log.Warn("authorizer's durable state replaced by import", "client", c.name, "credential", d.AppID+d.CorpID, "platform", id)
		}
	}
	s.log.Info("authorizers imported", "client", c.name, "credential", id, "imported", count[component.Imported],
		"replaced", count[component.Replaced], "skipped_existing", count[component.SkippedExisting], "of", len(req.Authorizers))
	if err != nil {
		return importError{len(done), err}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		component.Imported:        count[component.Imported],
		component.Replaced:        count[component.Replaced],
		component.SkippedExisting: count[component.SkippedExisting],
		"authorizers":             done,
	})
	return nil
}

// importError reports how many authorizers an import handled before it
// failed.
type importError struct {
	done int
	err  error
}

func (e importError) Error() string {
	return e.err.Error() + " (" + strconv.Itoa(e.done) + " authorizers handled)"
}
func (e importError) Unwrap() error { return e.err }

func (s *Server) listAuthorizers(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platform(r)
	if err != nil {
		return err
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return &badRequest{"limit must be 1 to 1000"}
		}
	}
	page, next := p.Page(s.tokens.IDs(), r.URL.Query().Get("cursor"), limit)
	list := make([]status, 0, len(page))
	now := time.Now()
	for _, snap := range page {
		list = append(list, statusOf(snap, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"authorizers": list, "next_cursor": next})
	return nil
}
