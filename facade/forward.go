package facade

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

	"github.com/wxtoken/wxtoken/wechat"
)

// Every other path on the facade is a WeChat API call an SDK sends to the
// same base URL as its token requests. It is forwarded to WeChat, to the
// host of the token's credential (Config.Upstream), only when it carries a
// token wxtoken issued: anything else is refused, so that the facade,
// which calls out from the address WeChat's IP whitelist trusts, is never
// an open relay. When WeChat answers 40001, 42001 or 40014 (the token was
// ended or replaced), the token is reported, once however many calls meet
// it, and the call is made once more with the token to use now. To replay
// it, a request body up to Config.MaxReplay is kept; a larger one streams
// through untouched and is not retried. Answers stream back untouched; an
// answer is looked into only when it is small JSON, which is how WeChat
// answers an errcode.

// maxErrAnswer bounds the answers read to find a stale-token errcode.
const maxErrAnswer = 4 << 10

// forward is one forwarded call's state, carried in its request's context
// through the reverse proxy.
type forward struct {
	it    issuedToken
	param string // the query parameter the token is in
	tok   string // the token to send
	base  *url.URL
	body  []byte // the request body, when kept for a retry
	keep  bool   // body is kept: the call may be retried
	retry bool   // this is the retry
}

type forwardKey struct{}

// staleAnswer is WeChat's refusal of a forwarded call's token: the answer
// as it came, to be sent on if the call cannot be retried.
type staleAnswer struct {
	code   int
	status int
	header http.Header
	body   []byte
}

func (s *staleAnswer) Error() string { return "token refused upstream" }

// newProxy returns the reverse proxy that carries forwarded calls.
func (f *Facade) newProxy(tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			fw := pr.In.Context().Value(forwardKey{}).(*forward)
			pr.SetURL(fw.base)
			q := pr.Out.URL.Query()
			q.Set(fw.param, fw.tok)
			pr.Out.URL.RawQuery = q.Encode()
			// No X-Forwarded-*: WeChat has no use for the business
			// server's address.
		},
		Transport:      tr,
		ModifyResponse: f.checkAnswer,
		ErrorHandler:   f.forwardFailed,
		ErrorLog:       slog.NewLogLogger(f.log.Handler(), slog.LevelWarn),
	}
}

// forwardCall answers a path that is not a token endpoint.
func (f *Facade) forwardCall(w http.ResponseWriter, r *http.Request) {
	fw, e := f.prepare(r)
	if e != nil {
		writeJSON(w, e)
		return
	}
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, fw)))
}

// prepare checks that r may be forwarded and says where.
func (f *Facade) prepare(r *http.Request) (*forward, *Error) {
	if f.upstream == nil || strings.Contains(r.URL.Path, "//") || strings.Contains(r.URL.Path, "/../") {
		return nil, &Error{Code: CodeInvalidURL, Msg: "invalid url domain or path: wxtoken's facade does not forward this path"}
	}
	q := r.URL.Query()
	fw := &forward{param: "access_token"}
	if q.Get(fw.param) == "" {
		fw.param = "component_access_token"
	}
	tok := q.Get(fw.param)
	if tok == "" {
		return nil, &Error{Code: CodeTokenMissing, Msg: "access_token missing: wxtoken's facade forwards only calls made with a token it issued"}
	}
	it, e := f.holderOfAny(r, tok)
	if e != nil {
		return nil, e
	}
	base, err := url.Parse(f.upstream(it.family))
	if err != nil || base.Host == "" {
		return nil, &Error{Code: CodeSystemError, Msg: "system error: no upstream for this token"}
	}
	fw.it, fw.tok, fw.base = it, tok, base
	if r.Body != nil && r.Body != http.NoBody {
		peek, err := io.ReadAll(io.LimitReader(r.Body, f.maxReplay+1))
		if err != nil {
			return nil, &Error{Code: CodeDataFormat, Msg: "data format error: body not read"}
		}
		if int64(len(peek)) <= f.maxReplay {
			fw.body, fw.keep = peek, true
			r.Body = io.NopCloser(bytes.NewReader(peek))
		} else {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(peek), r.Body), r.Body}
		}
	} else {
		fw.keep = true
	}
	return fw, nil
}

// holderOfAny is holder for a token of any family.
func (f *Facade) holderOfAny(r *http.Request, tok string) (issuedToken, *Error) {
	it, ok := f.issued.lookup(r.Context(), tok)
	if !ok {
		return issuedToken{}, &Error{Code: CodeInvalidCred, Msg: "invalid credential, access_token is invalid or not latest: not a token wxtoken issued"}
	}
	return f.holder(r, tok, it.family)
}

// checkAnswer turns WeChat's refusal of the token of a call that can be
// retried into a staleAnswer, for forwardFailed to retry.
func (f *Facade) checkAnswer(resp *http.Response) error {
	fw := resp.Request.Context().Value(forwardKey{}).(*forward)
	if !fw.keep || fw.retry || resp.ContentLength > maxErrAnswer ||
		!strings.Contains(resp.Header.Get("Content-Type"), "json") && !strings.Contains(resp.Header.Get("Content-Type"), "text/plain") {
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

// forwardFailed answers a forwarded call that did not come back as it
// went: a refused token is reported and the call made once more with the
// token to use now; an unreachable WeChat is WeChat's -1.
func (f *Facade) forwardFailed(w http.ResponseWriter, r *http.Request, err error) {
	fw := r.Context().Value(forwardKey{}).(*forward)
	var st *staleAnswer
	if !errors.As(err, &st) {
		// net/http's transport returns the dial error alone; one that
		// wraps it in a *url.Error would put the token in the log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL would hold the token
		}
		f.log.Warn("forwarded call failed", "credential", fw.it.id, "path", r.URL.Path, "err", err)
		writeJSON(w, &Error{Code: CodeSystemError, Msg: "system error: WeChat could not be reached"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
	defer cancel()
	snap, res, rerr := f.tokens.Report(ctx, fw.it.id, fw.tok)
	result := res.String()
	if rerr != nil {
		result = rerr.Error()
	}
	f.log.Info("token reported", "credential", fw.it.id, "via", "forwarded call", "path", r.URL.Path, "errcode", st.code, "result", result)
	if rerr != nil || snap.Token == fw.tok {
		// Nothing better to send it with: WeChat's answer stands.
		for k, v := range st.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(st.status)
		w.Write(st.body)
		return
	}
	f.handedOut(snap, fw.it.family, fw.it.sdk)
	again := *fw
	again.tok, again.retry = snap.Token, true
	r2 := r.Clone(context.WithValue(r.Context(), forwardKey{}, &again))
	r2.Body = http.NoBody
	if fw.body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(fw.body))
		r2.ContentLength = int64(len(fw.body))
	}
	f.proxy.ServeHTTP(w, r2)
}
