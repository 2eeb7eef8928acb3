// Package relay forwards WeChat API calls made with a token wxtoken holds,
// for the WeChat-compatible facade and the token-injecting proxy.
//
// A call goes to WeChat with the token its caller chose. When WeChat
// answers 40001, 42001 or 40014 (the token was ended or replaced), the
// token is reported (once however many calls meet it: the token manager
// checks and refreshes it), and the call is made once more with the token
// to use now. To make it again, a request body up to MaxReplay is kept; a
// larger one (a media upload) streams through untouched and is not
// retried, and WeChat's answer stands. Answers stream back untouched; an
// answer is looked into only when it is small JSON or text, which is how
// WeChat answers an errcode. A token never reaches a log: the error of a
// failed call is logged without its URL.
package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/wxtoken/wxtoken/wechat"
)

// maxErrAnswer bounds the answers read to find a stale-token errcode.
const maxErrAnswer = 4 << 10

// Relay forwards calls. Its fields must be set before the first Forward.
type Relay struct {
	// Transport makes the calls to WeChat; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	// MaxReplay bounds the request bodies kept for a retry (default
	// 64 KiB).
	MaxReplay int64
	// Renew reports c.Token, which WeChat refused, and returns the token
	// to use now; c.Token itself, or an error, when there is none better.
	Renew func(ctx context.Context, c Call) (string, error)
	// Failed answers a call WeChat could not be reached for, in the
	// caller's error shape.
	Failed func(w http.ResponseWriter, r *http.Request)
	// Logger receives the reports made and the failed calls; nil means
	// slog.Default().
	Logger *slog.Logger
	// Via names the caller in log lines ("facade", "proxy").
	Via string

	once  sync.Once
	proxy *httputil.ReverseProxy
}

// Call is one call to forward.
type Call struct {
	// ID is the credential whose token the call carries.
	ID string
	// Base is WeChat's host for it (scheme and host; its path is
	// prefixed to the call's).
	Base *url.URL
	// Path is the API path, such as /cgi-bin/menu/get; "" means the
	// request's own.
	Path string
	// Param is the query parameter the token goes in (access_token,
	// component_access_token).
	Param string
	// Token is the token to send.
	Token string
	// Data is the caller's own, handed back to Renew.
	Data any
}

// state is one forwarded call's state, carried in its request's context
// through the reverse proxy.
type state struct {
	call  Call
	body  []byte // the request body, when kept for a retry
	keep  bool   // the call may be retried
	retry bool   // this is the retry
}

type stateKey struct{}

// staleAnswer is WeChat's refusal of a call's token: the answer as it
// came, to be sent on if the call cannot be made again.
type staleAnswer struct {
	code   int
	status int
	header http.Header
	body   []byte
}

func (s *staleAnswer) Error() string { return "token refused upstream" }

// Forward makes the call r (with c's token, host and path) and writes
// WeChat's answer to w.
func (rl *Relay) Forward(w http.ResponseWriter, r *http.Request, c Call) {
	rl.once.Do(rl.init)
	st := &state{call: c, keep: true}
	if r.Body != nil && r.Body != http.NoBody {
		peek, err := io.ReadAll(io.LimitReader(r.Body, rl.MaxReplay+1))
		if err != nil {
			rl.log().Warn("forwarded call's body not read", "via", rl.Via, "credential", c.ID, "err", err)
			rl.Failed(w, r)
			return
		}
		if int64(len(peek)) <= rl.MaxReplay {
			st.body = peek
			r.Body = io.NopCloser(bytes.NewReader(peek))
		} else {
			st.keep = false
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(peek), r.Body), r.Body}
		}
	}
	rl.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

func (rl *Relay) init() {
	if rl.MaxReplay <= 0 {
		rl.MaxReplay = 64 << 10
	}
	rl.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := pr.In.Context().Value(stateKey{}).(*state)
			if st.call.Path != "" {
				pr.Out.URL.Path, pr.Out.URL.RawPath = st.call.Path, ""
			}
			pr.SetURL(st.call.Base)
			q := pr.Out.URL.Query()
			q.Set(st.call.Param, st.call.Token)
			pr.Out.URL.RawQuery = q.Encode()
			// No X-Forwarded-*: WeChat has no use for the business
			// server's address. No credentials of the caller's either.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Cookie")
		},
		Transport:      rl.Transport,
		ModifyResponse: rl.checkAnswer,
		ErrorHandler:   rl.failed,
		ErrorLog:       slog.NewLogLogger(rl.log().Handler(), slog.LevelWarn),
	}
}

func (rl *Relay) log() *slog.Logger {
	if rl.Logger == nil {
		return slog.Default()
	}
	return rl.Logger
}

// checkAnswer turns WeChat's refusal of the token of a call that can be
// made again into a staleAnswer, for failed to retry.
func (rl *Relay) checkAnswer(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*state)
	ct := resp.Header.Get("Content-Type")
	if !st.keep || st.retry || resp.ContentLength > maxErrAnswer ||
		!strings.Contains(ct, "json") && !strings.Contains(ct, "text/plain") {
		return nil
	}
	peek, err := io.ReadAll(io.LimitReader(resp.Body, maxErrAnswer+1))
	if err != nil {
		return err
	}
	if len(peek) > maxErrAnswer {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
		return nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(peek))
	var ans struct {
		ErrCode int `json:"errcode"`
	}
	if json.Unmarshal(peek, &ans) == nil && wechat.Classify(&wechat.APIError{ErrCode: ans.ErrCode}) == wechat.Stale {
		return &staleAnswer{code: ans.ErrCode, status: resp.StatusCode, header: resp.Header.Clone(), body: peek}
	}
	return nil
}

// failed answers a call that did not come back as it went: a refused
// token is reported and the call made once more with the token to use
// now; an unreachable WeChat is answered by Failed.
func (rl *Relay) failed(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*state)
	var sa *staleAnswer
	if !errors.As(err, &sa) {
		// net/http's transport returns the dial error alone; one that
		// wraps it in a *url.Error would put the token in the log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL would hold the token
		}
		rl.log().Warn("forwarded call failed", "via", rl.Via, "credential", st.call.ID, "path", r.URL.Path, "err", err)
		rl.Failed(w, r)
		return
	}
	fresh, rerr := rl.Renew(r.Context(), st.call)
	result := "renewed"
	if rerr != nil {
		result = rerr.Error()
	} else if fresh == st.call.Token {
		result = "kept"
	}
	rl.log().Info("token reported", "via", rl.Via, "credential", st.call.ID, "path", r.URL.Path, "errcode", sa.code, "result", result)
	if rerr != nil || fresh == st.call.Token {
		// Nothing better to send it with: WeChat's answer stands.
		for k, v := range sa.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(sa.status)
		w.Write(sa.body)
		return
	}
	again := *st
	again.call.Token, again.retry = fresh, true
	r2 := r.Clone(context.WithValue(r.Context(), stateKey{}, &again))
	r2.Body = http.NoBody
	r2.ContentLength = 0
	if st.body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(st.body))
		r2.ContentLength = int64(len(st.body))
	}
	rl.proxy.ServeHTTP(w, r2)
}
