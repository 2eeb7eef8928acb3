package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// Transport is an http.RoundTripper for calls to WeChat's APIs: it sets
// the access_token query parameter from Source on every request and, when
// WeChat answers that the token is dead (errcode 40001, 42001 or 40014),
// reports it with Source.Invalidate and sends the request once more with
// the token that answers. It never retries more than once, nor for any
// other answer.
//
// A request body of up to MaxBody bytes is kept for that retry; a larger
// one is sent once, as it comes, and a dead-token answer to it is reported
// and returned to the caller. Answers are inspected only when they are JSON or text and
// the whole answer fits in a small buffer (WeChat's errors are a few dozen
// bytes); others, such as media downloads, pass through untouched.
type Transport struct {
	// Source gives the token. Required.
	Source *TokenSource
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// MaxBody is the largest request body kept for a retry (default
	// 1 MiB); a negative value keeps none.
	MaxBody int64
}

const (
	defaultMaxBody = 1 << 20
	// maxPeek bounds how much of an answer is read to look for errcode.
	maxPeek = 8 << 10
)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("wxtoken client: Transport.Source is nil")
	}
	ctx := req.Context()
	tok, err := t.Source.Token(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	body, replay, err := t.keepBody(req)
	if err != nil {
		return nil, err
	}
	resp, err := t.base().RoundTrip(withToken(req, tok, body))
	if err != nil {
		return resp, err
	}
	code, resp, err := peekErrCode(resp)
	if err != nil || !deadToken(code) {
		return resp, err
	}
	// Reported even when the call cannot be sent again, so that the next
	// call has a token that works.
	fresh, ierr := t.Source.Invalidate(ctx, tok)
	if ierr != nil || fresh == tok || replay == nil {
		// No better token, or no body, to retry with: WeChat's answer
		// stands.
		return resp, nil
	}
	again, err := replay()
	if err != nil {
		return resp, nil
	}
	resp.Body.Close()
	return t.base().RoundTrip(withToken(req, fresh, again))
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// deadToken reports whether WeChat's errcode says the access token is
// dead: 40001 (invalid credential: replaced, or ended), 42001 (expired),
// 40014 (not a valid access token).
func deadToken(code int) bool { return code == 40001 || code == 42001 || code == 40014 }

// keepBody returns the body to send first and, when the request may be
// sent again, a function returning a fresh copy of it (nil when it may
// not). A body over MaxBody is streamed once, untouched.
func (t *Transport) keepBody(req *http.Request) (io.ReadCloser, func() (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, func() (io.ReadCloser, error) { return req.Body, nil }, nil
	}
	limit := t.MaxBody
	if limit == 0 {
		limit = defaultMaxBody
	}
	if limit < 0 {
		return req.Body, nil, nil
	}
	if req.GetBody != nil && req.ContentLength >= 0 && req.ContentLength <= limit {
		return req.Body, req.GetBody, nil
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		req.Body.Close()
		return nil, nil, err
	}
	if int64(len(buf)) > limit {
		// Too large to keep: send what was read, then the rest, once.
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, nil, nil
	}
	req.Body.Close()
	replay := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	first, _ := replay()
	return first, replay, nil
}

// withToken is a copy of req with access_token set to tok and the given
// body; the caller's request is not changed.
func withToken(req *http.Request, tok string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	q := r.URL.Query()
	q.Set("access_token", tok)
	r.URL.RawQuery = q.Encode()
	r.Body = body
	return r
}

// peekErrCode reads the errcode of a small JSON or text answer and gives
// back a response whose body reads as the original did.
func peekErrCode(resp *http.Response) (int, *http.Response, error) {
	if !inspectable(resp) {
		return 0, resp, nil
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, maxPeek+1))
	if err != nil {
		resp.Body.Close()
		return 0, nil, err
	}
	if len(buf) > maxPeek {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
		return 0, resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
	var v struct {
		ErrCode int `json:"errcode"`
	}
	if json.Unmarshal(buf, &v) != nil {
		return 0, resp, nil
	}
	return v.ErrCode, resp, nil
}

// inspectable: WeChat answers errors as JSON, labelled application/json or
// text/plain; anything else is content (an image, a file) and is left be.
func inspectable(resp *http.Response) bool {
	if resp.ContentLength > maxPeek {
		return false
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return resp.Header.Get("Content-Type") == ""
	}
	return mt == "application/json" || mt == "text/plain" || mt == "text/json"
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
