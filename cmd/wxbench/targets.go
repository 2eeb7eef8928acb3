package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/wxtoken/wxtoken/kind"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
	"github.com/wxtoken/wxtoken/wxtest"
)

// The one credential the wxtoken API serves.
const (
	credID     = "bench-mp"
	credKind   = "mp"
	credAppID  = "wx0000000000000be0" // wx and 16 hex digits, as config requires
	credSecret = "wxbench-secret"
)

// service is an http.Server on a loopback port, serving until close.
type service struct {
	srv    *http.Server
	url    string
	served chan error
}

// serve starts h on 127.0.0.1:0 with the settings the wxtoken command gives
// its API, so that both targets pay the same per-connection costs
// (deadlines, header limits). Its goroutines carry the pprof label
// target=name.
func serve(name string, h http.Handler, log *slog.Logger) (*service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &service{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		url:    "http://" + ln.Addr().String(),
		served: make(chan error, 1),
	}
	go pprof.Do(context.Background(), pprof.Labels("target", name), func(context.Context) {
		s.served <- s.srv.Serve(ln)
	})
	return s, nil
}

// close stops the server, letting requests in flight finish.
func (s *service) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// stack is the wxtoken side: a fake WeChat, a bolt store in a temporary
// directory, a token manager and the API.
type stack struct {
	key    string // the client's bearer key
	dir    string
	store  store.Store
	tokens *token.Manager
	api    *service
}

// startStack starts the wxtoken side and waits until the API has a token
// to serve.
func startStack(ctx context.Context, log *slog.Logger, redisAddr string) (st *stack, err error) {
	st = &stack{key: rand.Text()}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(credAppID, credSecret)
	// Upstream is called in process: it is not on the measured path, and
	// this keeps its sockets out of the numbers.
	up := &wechat.Client{HTTP: fake.Client(), API: "http://wxtest.invalid"}

	// Each store is assigned to st.store only once opened: a nil
	// *redis.Store or *bolt.Store in the interface would make close panic.
	if redisAddr != "" {
		rs, err := redisstore.Open(ctx, redisstore.Config{Addrs: []string{redisAddr},
			KeyPrefix: "wxbench:" + rand.Text() + ":", AllowNoPersistence: true, Logger: log})
		if err != nil {
			return st, err
		}
		st.store = rs
	} else {
		if st.dir, err = os.MkdirTemp("", "wxbench-"); err != nil {
			return st, err
		}
		bs, err := bolt.Open(st.dir)
		if err != nil {
			return st, err
		}
		st.store = bs
	}
	cred := token.Credential{
		ID:          credID,
		Kind:        credKind,
		Source:      &kind.ClassicSource{Client: up, AppID: credAppID, Secret: credSecret},
		Fingerprint: token.Fingerprint(credKind, credAppID, credSecret, "classic", up.API),
	}
	if st.tokens, err = token.New(token.Config{Store: st.store, Logger: log}, []token.Credential{cred}); err != nil {
		return st, err
	}
	if err = st.tokens.Start(ctx); err != nil {
		return st, fmt.Errorf("load stored tokens: %w", err)
	}
	if err = st.waitToken(ctx, 10*time.Second); err != nil {
		return st, err
	}
	api, err := server.New(server.Config{
		Tokens:  st.tokens,
		Clients: []server.Client{{Name: "wxbench", KeyHash: sha256.Sum256([]byte(st.key)), Allow: []string{"*"}}},
		Logger:  log,
	})
	if err != nil {
		return st, err
	}
	st.api, err = serve("wxtoken", api, log)
	return st, err
}

// waitToken waits until the manager's first fetch has succeeded.
func (st *stack) waitToken(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := st.tokens.Token(credID)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no token for %s after %s: %w", credID, limit, err)
		case <-tick.C:
		}
	}
}

// close stops the API, the manager and the store and removes the data
// directory, whatever of them was started.
func (st *stack) close() error {
	var errs []error
	if st.api != nil {
		errs = append(errs, st.api.close())
	}
	if st.tokens != nil {
		errs = append(errs, st.tokens.Close())
	}
	if st.store != nil {
		errs = append(errs, st.store.Close())
	}
	if st.dir != "" {
		errs = append(errs, os.RemoveAll(st.dir))
	}
	return errors.Join(errs...)
}

// constant answers every request with body and the headers wxtoken's
// token answer has; net/http adds Content-Length and Date to both alike.
// It does the least a handler can: the header values are made once and
// shared by every response.
func constant(body []byte) http.Handler {
	contentType, cacheControl := []string{"application/json"}, []string{"no-store"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = contentType
		h["Cache-Control"] = cacheControl
		w.Write(body)
	})
}

// response is one answer, read whole.
type response struct {
	header http.Header
	body   []byte
}

// fetch sends one request for the token to base and checks that it is a
// 200 token response.
func fetch(ctx context.Context, base, key string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+tokenPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", base+tokenPath, resp.Status, bytes.TrimSpace(body))
	}
	return &response{header: resp.Header, body: body}, nil
}

// sameHeaders checks that the bare handler answers with the same header
// fields as the real one, and the same values in all but Date.
func sameHeaders(real, bare http.Header) error {
	for k := range real {
		if _, ok := bare[k]; !ok {
			return fmt.Errorf("header %s: wxtoken sends it, bare does not", k)
		}
	}
	for k, b := range bare {
		r, ok := real[k]
		switch {
		case !ok:
			return fmt.Errorf("header %s: bare sends it, wxtoken does not", k)
		case k != "Date" && !slices.Equal(r, b):
			return fmt.Errorf("header %s: wxtoken %q, bare %q", k, r, b)
		}
	}
	return nil
}
