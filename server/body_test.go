package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log output, safe for the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBodyReadFailures sends bodies that never arrive whole over raw TCP
// to a real HTTP server: one cut short (a Content-Length larger than what
// is sent, then the client closes its side), one that stalls past the
// server's read timeout. They are the client's failures: 400 and 408,
// and no error-level log line. Before, a callback body cut short answered
// 500 and logged an error per request, so that anyone could flood the
// error log, and a stalled one answered 502 upstream_error, as if WeChat
// had failed; a stalled report answered 400 malformed JSON.
func TestBodyReadFailures(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	api, err := New(Config{Tokens: e.m, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clients:   []Client{{Name: "shop", KeyHash: sha256.Sum256([]byte(shopKey)), Allow: []string{"shop"}}},
		Callbacks: []Callback{{Kind: "mp", ID: "oa", Token: "AAAAA"}}, CallbackModes: testModes})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api)
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	callback := fmt.Sprintf("POST /callback/mp/oa?timestamp=%d&nonce=1&signature=x HTTP/1.1\r\nHost: wx\r\n", time.Now().Unix())
	report := "POST /v1/tokens/shop/invalidate HTTP/1.1\r\nHost: wx\r\nAuthorization: Bearer " + shopKey + "\r\n"
	tests := []struct {
		name, head string
		stall      bool
		status     int
		code       string
	}{
		{"callback cut short", callback, false, http.StatusBadRequest, "bad_request"},
		{"callback stalled", callback, true, http.StatusRequestTimeout, "request_timeout"},
		{"report cut short", report, false, http.StatusBadRequest, "bad_request"},
		{"report stalled", report, true, http.StatusRequestTimeout, "request_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := sendPartial(t, addr, tt.head, tt.stall)
			if status != tt.status || !strings.Contains(body, `"code":"`+tt.code+`"`) {
				t.Errorf("%d %s; want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	if out := logs.String(); strings.Contains(out, "level=ERROR") {
		t.Fatalf("client-side body failures were logged as errors:\n%s", out)
	}
}

// sendPartial sends head with a Content-Length of 100 and 10 bytes of
// body, then closes its side of the connection, or, with stall, sends
// nothing more, and returns the status and body of the answer.
func sendPartial(t *testing.T, addr, head string, stall bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second)) // a hung server fails the test
	if _, err := io.WriteString(conn, head+"Content-Length: 100\r\n\r\n"+`{"access_t`); err != nil {
		t.Fatal(err)
	}
	if !stall {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
