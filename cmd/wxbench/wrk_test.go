package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets wxbench wrk start this test binary as its bare handler,
// as it starts the wxbench binary outside tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestWrkSmoke runs one short wrk round against each server process, for
// each kind of comparison. It checks that both answered every request and
// that the report was printed; timings are not checked.
func TestWrkSmoke(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("wrk not installed (Debian: apt-get install wrk)")
		}
		t.Fatal("wrk not installed; .ci/run installs it")
	}
	for _, against := range []string{againstBare, againstNoMetrics} {
		t.Run(against, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			o := wrkOptions{threads: 1, conns: 4, duration: time.Second, rounds: 1, procs: 1, wrk: "wrk", against: against}
			res, err := wrkBench(t.Context(), o, &stdout, &stderr)
			t.Logf("output:\n%s%s", stdout.String(), stderr.String())
			if err != nil {
				t.Fatal(err)
			}
			if err := res.err(); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"wxtoken", against} {
				rounds := res.of(name)
				if len(rounds) != 1 || rounds[0].requests == 0 {
					t.Errorf("%s: got rounds %+v, want one with requests", name, rounds)
				}
			}
			if !strings.Contains(stdout.String(), "throughput ratio wxtoken/"+against) {
				t.Errorf("report has no ratio line:\n%s", stdout.String())
			}
		})
	}
}
