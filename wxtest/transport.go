package wxtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// clientAddr is the peer address of requests made through Client, as if
// they came over loopback.
const clientAddr = "127.0.0.1:49152"

// Client returns an http.Client whose requests are served by f in-process,
// whatever their URL's host, without touching the network. Tests running
// under testing/synctest need it: a real socket is not part of the bubble,
// so waiting on one would keep the fake clock from advancing.
//
// The client is safe for concurrent use. Its responses are ordinary
// *http.Response values with status, headers and a body to read and close.
// A request whose context ends while the fake is still working on it (a
// Delay or Hang fault) fails with the context's error, as over a network.
func (f *Fake) Client() *http.Client {
	return HandlerClient(f)
}

// HandlerClient returns an http.Client whose requests are served by h
// in-process, as Client's are by the Fake. Tests under testing/synctest
// give one to SetPushTarget, so that pushes reach the handler that receives
// them without a socket.
func HandlerClient(h http.Handler) *http.Client {
	return &http.Client{Transport: transport{h: h}}
}

// transport is an http.RoundTripper that calls a handler directly.
type transport struct {
	h http.Handler
}

// RoundTrip serves req with the handler on the calling goroutine. The
// handler's own waits watch the request's context, so returning when that
// context ends needs no extra goroutine.
func (t transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	// A RoundTripper must close the request body, whatever happens.
	defer func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}()
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The handler sees what a server would: its own copy of the request,
	// with a peer address, a request URI and a non-nil body.
	in := req.Clone(ctx)
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.RemoteAddr = clientAddr
	in.RequestURI = req.URL.RequestURI()
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1

	rec := &recorder{header: make(http.Header)}
	defer func() {
		// A panicking handler breaks only this request, as it would only
		// break its connection on a real server.
		if p := recover(); p != nil {
			resp, err = nil, fmt.Errorf("wxtest: handler panic: %v", p)
		}
	}()
	t.h.ServeHTTP(rec, in)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rec.response(req), nil
}

// recorder is the http.ResponseWriter of in-process requests. It snapshots
// the headers at WriteHeader, as a server does, so later changes are lost.
type recorder struct {
	header  http.Header
	status  int
	written http.Header
	body    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	r.status = code
	r.written = r.header.Clone()
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.body.Write(p)
}

// response builds the client's view of what the handler wrote.
func (r *recorder) response(req *http.Request) *http.Response {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	h := r.written
	body := r.body.Bytes()
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", http.DetectContentType(body))
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	resp := &http.Response{
		Status:        fmt.Sprintf("%d %s", r.status, http.StatusText(r.status)),
		StatusCode:    r.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp
}
