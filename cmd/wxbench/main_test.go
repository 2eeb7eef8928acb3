package main

import (
	"bytes"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/redis/redistest"
)

// TestSmoke runs a short benchmark end to end. It checks what the program
// must get right whatever the machine: both targets answered, nothing
// failed, the bodies were the same size, and nothing was left running.
// Timings are not checked.
func TestSmoke(t *testing.T) {
	smoke(t, "")
}

// TestSmokeRedis runs the same with wxtoken's state in a real Redis.
func TestSmokeRedis(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	smoke(t, srv.Addr())
}

func smoke(t *testing.T, redis string) {
	before := runtime.NumGoroutine()
	var stdout, stderr bytes.Buffer
	o := options{conns: 4, duration: 300 * time.Millisecond, rounds: 1, warmup: 100 * time.Millisecond, redis: redis}
	res, err := bench(t.Context(), o, &stdout, &stderr)
	t.Logf("output:\n%s%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := res.err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wxtoken", "bare"} {
		rounds := res.of(name)
		if len(rounds) != o.rounds {
			t.Fatalf("%s: got %d rounds, want %d", name, len(rounds), o.rounds)
		}
		for i, r := range rounds {
			if r.requests == 0 || r.errors != 0 {
				t.Errorf("%s round %d: got %d requests and %d errors, want >0 and 0", name, i+1, r.requests, r.errors)
			}
		}
	}
	if got, want := res.sizes["bare"], res.sizes["wxtoken"]; got != want || want == 0 {
		t.Errorf("body sizes: bare %d, wxtoken %d; want equal and not 0", got, want)
	}
	if !strings.Contains(stdout.String(), "| ratio ") {
		t.Errorf("report has no ratio line:\n%s", stdout.String())
	}

	// Connections close asynchronously after Shutdown and
	// CloseIdleConnections; give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left running, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-c", "0"},
		{"-d", "0s"},
		{"-rounds", "0"},
		{"-warmup", "-1s"},
		{"extra"},
	} {
		var out bytes.Buffer
		if err := run(t.Context(), args, &out, &out); err == nil {
			t.Errorf("run(%q): got no error, want one", args)
		}
	}
}

// TestRedisUnreachable: with -redis pointing at nothing, wxbench reports
// the failure instead of panicking.
func TestRedisUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	err = run(t.Context(), []string{"-redis", addr, "-d", "100ms", "-rounds", "1", "-warmup", "0s"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("run with Redis at %s down: %v; want an error naming the address", addr, err)
	}
}
