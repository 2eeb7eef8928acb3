package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// JSSDK is what a credential's web pages need of wxtoken: its tickets and
// the ids wx.config and wx.agentConfig are signed for.
type JSSDK struct {
	// AppID is wx.config's appId: the account's appid (an authorizer's
	// own, not the platform's), or a WeCom corp's corpid.
	AppID string
	// Tickets maps each enabled ticket type to its credential id.
	Tickets map[string]string
	// Config is the type of the ticket wx.config is signed with ("jsapi"),
	// "" when it is not enabled.
	Config string
	// AgentConfig is the type of the ticket wx.agentConfig is signed
	// with (WeCom's "agent_config"), "" when not enabled; AgentID is the
	// application's AgentId it is signed for.
	AgentConfig string
	AgentID     int64
}

// errNoTicket is a ticket type the credential does not have.
var errNoTicket = errors.New("no such ticket for this credential")

// jssdkOf returns the JS-SDK of id, which the request's client must be
// allowed to use.
func (s *Server) jssdkOf(r *http.Request, id string) (*JSSDK, error) {
	if _, err := s.authorizeToken(r, id); err != nil {
		return nil, err
	}
	id = s.canonical(id)
	var j *JSSDK
	if s.jssdk != nil {
		j = s.jssdk(id)
	}
	if j == nil {
		if _, err := s.tokens.Snapshot(id); err != nil {
			return nil, err // unknown credential
		}
		return nil, fmt.Errorf("%w: %s has no tickets enabled (tickets: [...] in its configuration)", errNoTicket, id)
	}
	return j, nil
}

// ticketOf returns the JS-SDK of id and the credential id of its ticket
// of type typ.
func (s *Server) ticketOf(r *http.Request, id, typ string) (*JSSDK, string, error) {
	j, err := s.jssdkOf(r, id)
	if err != nil {
		return nil, "", err
	}
	tid, ok := j.Tickets[typ]
	if !ok || typ == "" {
		return nil, "", fmt.Errorf("%w: %s has no %q ticket", errNoTicket, id, typ)
	}
	return j, tid, nil
}

// current returns the valid token of credential id, waiting briefly for a
// fetch that is due or under way.
func (s *Server) current(r *http.Request, id string) (*token.Snapshot, error) {
	snap, err := s.tokens.Token(id)
	if err != nil {
		snap, err = s.tokens.Await(r.Context(), id)
	}
	return snap, err
}

// getTicket answers GET /v1/tokens/{id}/tickets/{type}.
func (s *Server) getTicket(w http.ResponseWriter, r *http.Request) error {
	id, typ := tokenID(r), r.PathValue("type")
	_, tid, err := s.ticketOf(r, id, typ)
	if err != nil {
		return err
	}
	snap, err := s.current(r, tid)
	if err != nil {
		return err
	}
	now := time.Now()
	in := int64(snap.ExpiresIn(now) / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{"id": s.canonical(id), "type": typ, "ticket": snap.Token, "expires_in": in,
		"expires_at": now.Add(time.Duration(in) * time.Second).UTC().Format(time.RFC3339)})
	return nil
}

// signRequest is the body of POST /v1/tokens/{id}/jssdk.
type signRequest struct {
	URL string `json:"url"`
}

// signature is one wx.config or wx.agentConfig signature.
type signature struct {
	AppID     string `json:"appId,omitempty"`
	CorpID    string `json:"corpid,omitempty"`
	AgentID   string `json:"agentid,omitempty"`
	Timestamp int64  `json:"timestamp"`
	NonceStr  string `json:"nonceStr"`
	Signature string `json:"signature"`
}

// signJSSDK answers POST /v1/tokens/{id}/jssdk with what wx.config (and,
// for WeCom, wx.agentConfig) needs for the page at the given url, so that
// the page never holds a ticket.
func (s *Server) signJSSDK(w http.ResponseWriter, r *http.Request) error {
	id := tokenID(r)
	j, err := s.jssdkOf(r, id)
	if err != nil {
		return err
	}
	// The ticket wx.config is signed with (jsapi; WeCom's corp ticket).
	tid, ok := j.Tickets[j.Config]
	if !ok || j.Config == "" {
		return fmt.Errorf("%w: %s has no jsapi ticket enabled, which wx.config is signed with", errNoTicket, id)
	}
	var req signRequest
	if err := decodeJSON(w, r, s.maxBody, &req); err != nil {
		return err
	}
	page, err := pageURL(req.URL)
	if err != nil {
		return err
	}
	cfg, err := s.sign(r, tid, page)
	if err != nil {
		return err
	}
	cfg.AppID = j.AppID
	out := struct {
		signature
		AgentConfig *signature `json:"agentConfig,omitempty"`
	}{signature: cfg}
	if j.AgentConfig != "" {
		ag, err := s.sign(r, j.Tickets[j.AgentConfig], page)
		if err != nil {
			return err
		}
		ag.CorpID, ag.AgentID = j.AppID, strconv.FormatInt(j.AgentID, 10)
		out.AgentConfig = &ag
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// sign signs page with the current ticket of credential tid.
func (s *Server) sign(r *http.Request, tid, page string) (signature, error) {
	snap, err := s.current(r, tid)
	if err != nil {
		return signature{}, err
	}
	sg := signature{Timestamp: time.Now().Unix(), NonceStr: wechat.NewNonce()}
	sg.Signature = wechat.JSSDKSignature(snap.Token, sg.NonceStr, sg.Timestamp, page)
	return sg, nil
}

// pageURL checks the url a page is signed for: an absolute http(s) URL.
// It is used exactly as given, without its #fragment, as WeChat signs it:
// no escaping or normalising, or the signature would not match.
func pageURL(raw string) (string, error) {
	if raw == "" {
		return "", &badRequest{`url is required: the page's full URL, as location.href.split('#')[0]`}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", &badRequest{fmt.Sprintf("url must be an absolute http or https URL, got %q", raw)}
	}
	page, _, _ := strings.Cut(raw, "#")
	return page, nil
}
