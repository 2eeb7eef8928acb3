package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want wrkResult
	}{{
		name: "clean run",
		out: `Running 5s test @ http://127.0.0.1:40123/v1/tokens/bench-mp
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  512.10us  12.34ms   90.12%
    Req/Sec    32.10k     2.10k   35.00k    70.00%
  Latency Distribution
     50%  950.00us
     75%    1.10ms
     90%    1.40ms
     99%    3.90ms
  321000 requests in 5.00s, 80.00MB read
Requests/sec:  64200.00
Transfer/sec:     16.00MB
`,
		want: wrkResult{requests: 321000, elapsed: 5 * time.Second, rate: 64200, p50: 950 * time.Microsecond,
			p99: 3900 * time.Microsecond, max: 12340 * time.Microsecond},
	}, {
		name: "errors and long times",
		out: `Running 1s test @ http://127.0.0.1:18999/nonexistent
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms    0.90ms    1.00m    93.06%
    Req/Sec     1.68k   237.88     1.97k    80.00%
  Latency Distribution
     50%    1.02ms
     75%    1.33ms
     90%    1.76ms
     99%    2.50s
  1673 requests in 1.00m, 849.75KB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 1673
Requests/sec:   1668.03
Transfer/sec:    847.23KB
`,
		want: wrkResult{requests: 1673, elapsed: time.Minute, rate: 1668.03, p50: 1020 * time.Microsecond,
			p99: 2500 * time.Millisecond, max: time.Minute, non2xx: 1673, sockErrs: 10},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkIncomplete(t *testing.T) {
	tests := []struct {
		name, out, wantErr string
	}{
		{"no --latency", `    Latency     1.02ms  512.10us  12.34ms   90.12%
  321000 requests in 5.00s, 80.00MB read
Requests/sec:  64200.00
`, "99%"},
		{"empty", "", "Requests/sec"},
		{"bad number", `Requests/sec:  lots
`, "lots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseWrk(tt.out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestWrkFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-t", "0"},
		{"-t", "4", "-c", "2"},
		{"-d", "500ms"},
		{"-warmup", "100ms"},
		{"-rounds", "0"},
		{"-procs", "0"},
		{"extra"},
	} {
		var out strings.Builder
		if err := run(t.Context(), append([]string{"wrk"}, args...), &out, &out); err == nil {
			t.Errorf("run(wrk %q): got no error, want one", args)
		}
	}
}

func TestListeningAddr(t *testing.T) {
	for line, want := range map[string]string{
		`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"listening","addr":"127.0.0.1:4321","credentials":1}`: "127.0.0.1:4321",
		`{"level":"INFO","msg":"refreshed","addr":"127.0.0.1:1"}`:                                                  "",
		`not json`: "",
	} {
		if got := listeningAddr(line); got != want {
			t.Errorf("listeningAddr(%q) = %q, want %q", line, got, want)
		}
	}
}
