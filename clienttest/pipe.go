package clienttest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// HandlerClient returns an http.Client whose requests h serves in the
// calling process, with no socket, streaming: the response is returned as
// soon as h writes its header or flushes, and its body is read as h writes
// it. Server-Sent Events so work inside a testing/synctest bubble, which
// wxtest.HandlerClient, answering once the handler returns, cannot carry.
//
// Closing the response body, or the request's context ending, ends the
// handler's request context and fails its writes.
func HandlerClient(h http.Handler) *http.Client {
	return &http.Client{Transport: pipeTransport{h}}
}

type pipeTransport struct{ h http.Handler }

func (t pipeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	in := req.Clone(ctx)
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.RemoteAddr = "127.0.0.1:49153"
	in.RequestURI = req.URL.RequestURI()
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1

	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				pw.CloseWithError(fmt.Errorf("clienttest: handler panic: %v", p))
			}
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			in.Body.Close()
			pw.Close()
		}()
		t.h.ServeHTTP(w, in)
	}()
	<-w.ready // the handler sees ctx and answers or returns
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}, nil
}

// pipeWriter is the handler's http.ResponseWriter: the header is sent at
// the first write, WriteHeader or Flush, the body through the pipe.
type pipeWriter struct {
	header http.Header
	pw     *io.PipeWriter

	once   sync.Once
	status int
	sent   http.Header
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

// Flush sends the header; written bytes are already with the reader.
func (w *pipeWriter) Flush() { w.WriteHeader(http.StatusOK) }
