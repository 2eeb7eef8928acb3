package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves Go's profiler on its own loopback listener when the
// configuration asks for it (debug.listen), so that memory and CPU can be
// measured on a running process: /debug/pprof/heap?gc=1 collects garbage
// first and ends with the runtime's memory statistics.
type debugServer struct {
	srv    *http.Server
	addr   string // the listener's address
	served chan error
}

// startDebug listens on addr and serves the profiler there.
func startDebug(addr string, log *slog.Logger) (*debugServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return startSide(addr, mux, "profiler", log)
}

// startSide listens on addr and serves h there: a listener of its own
// beside the API's, for what operators reach and clients must not.
func startSide(addr string, h http.Handler, what string, log *slog.Logger) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	d := &debugServer{
		srv:    &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		addr:   ln.Addr().String(),
		served: make(chan error, 1),
	}
	go func() { d.served <- d.srv.Serve(ln) }()
	log.Info(what+" listening", "addr", ln.Addr().String())
	return d, nil
}

// close stops the listener, ending any request being served (a profile
// being taken).
func (d *debugServer) close() error {
	err := d.srv.Close()
	if serr := <-d.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
