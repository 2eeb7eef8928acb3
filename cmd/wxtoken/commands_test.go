package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wechat"
)

// syncBuffer is a bytes.Buffer safe to write and read concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFakewxCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"fakewx", "--listen", "127.0.0.1:0", "--app", "wx1:s1"}, &out, io.Discard)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("fakewx did not report its address")
		}
		if _, rest, ok := strings.Cut(out.String(), "listening on "); ok {
			addr = strings.Fields(rest)[0]
		}
	}
	c := &wechat.Client{API: addr}
	if _, err := c.ClassicToken(t.Context(), "wx1", "s1"); err != nil {
		t.Fatalf("token from fakewx: %v", err)
	}
	if _, err := c.ClassicToken(t.Context(), "wx1", "wrong"); wechat.ErrCode(err) != wechat.CodeInvalidSecret {
		t.Fatalf("wrong secret: %v, want 40125", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("fakewx exit: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"serve", "--config", "/does/not/exist.yaml"}, {"fakewx", "--component", "bad"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"help"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "serve") {
		t.Fatalf("help = %v, %q", err, out.String())
	}
}

// TestCommandHelp: -h and --help print a command's usage to stdout and
// succeed (exit status 0), without running the command.
func TestCommandHelp(t *testing.T) {
	for _, tt := range []struct{ cmd, flag string }{
		{"serve", "-config"}, {"demo", "-lifetime"}, {"fakewx", "-daily-limit"},
	} {
		for _, h := range []string{"-h", "--help"} {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{tt.cmd, h}, &stdout, &stderr)
			if err != nil {
				t.Errorf("wxtoken %s %s: %v, want success", tt.cmd, h, err)
			}
			if out := stdout.String(); !strings.Contains(out, "usage: wxtoken "+tt.cmd) || !strings.Contains(out, tt.flag) {
				t.Errorf("wxtoken %s %s printed %q to stdout; want its usage with %s", tt.cmd, h, out, tt.flag)
			}
		}
	}
	// A wrong flag is still an error, with the usage on stderr.
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--nope"}, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "usage: wxtoken serve") {
		t.Errorf("wxtoken serve --nope: %v, stderr %q; want an error and the usage on stderr", err, stderr.String())
	}
}
