package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestScaleSmall runs the scale scenario with a few thousand authorizers:
// every one imported gets a token, and after kill -9 the restarted process
// serves every stored token, the same as before, without one call to
// WeChat. Timings and memory are reported, not checked.
func TestScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wxtoken; skipped with -short")
	}
	var out bytes.Buffer
	o := scaleOptions{n: 2000, batch: 1000, sample: 200, settle: 0, timeout: 2 * time.Minute}
	res, err := scale(t.Context(), o, &out)
	if res != nil {
		res.print(&out)
	}
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := res.err(); err != nil {
		t.Fatal(err)
	}
	if res.importFetches < o.n {
		t.Errorf("import made %d authorizer token calls, want at least %d", res.importFetches, o.n)
	}
	if res.restartFetches != 0 {
		t.Errorf("restart made %d token calls, want 0", res.restartFetches)
	}
	for _, m := range []memory{res.afterImport, res.afterRestart} {
		if m.rss <= 0 || m.heapAlloc <= 0 {
			t.Errorf("memory not measured: %+v", m)
		}
	}
}

func TestScaleFlags(t *testing.T) {
	for _, args := range [][]string{
		{"scale", "-n", "0"},
		{"scale", "-batch", "1001"},
		{"scale", "-latency", "-1s"},
		{"scale", "-sample", "0"},
		{"scale", "extra"},
	} {
		var out bytes.Buffer
		err := run(t.Context(), args, &out, &out)
		if err == nil {
			t.Errorf("run(%q): got no error, want one", args)
		} else if strings.Contains(err.Error(), "building") {
			t.Errorf("run(%q) started the scenario: %v", args, err)
		}
	}
}
