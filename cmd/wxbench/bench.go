package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// result is a whole run: the warmup and the measured rounds of each
// target, in the order they ran.
type result struct {
	sizes  map[string]int // body bytes of one answer, by target
	warmup []named
	rounds []named
}

// named is a round and the target it loaded.
type named struct {
	target string
	round
}

// of returns the measured rounds of one target.
func (res *result) of(target string) []round {
	var out []round
	for _, n := range res.rounds {
		if n.target == target {
			out = append(out, n.round)
		}
	}
	return out
}

// err reports the failed requests of the whole run, warmup included.
func (res *result) err() error {
	var total, failed int
	var first error
	for _, n := range slices.Concat(res.warmup, res.rounds) {
		total += n.requests + n.errors
		failed += n.errors
		if first == nil && n.err != nil {
			first = fmt.Errorf("%s: %w", n.target, n.err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed; the first: %w", failed, total, first)
	}
	return nil
}

// bench sets up both targets, loads them in turn and prints the report.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) (res *result, err error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := startStack(ctx, log, o.redis)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, st.close()) }()

	real, err := fetch(ctx, st.api.url, st.key)
	if err != nil {
		return nil, fmt.Errorf("wxtoken: %w", err)
	}
	bareSrv, err := serve("bare", constant(real.body), log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, bareSrv.close()) }()
	bare, err := fetch(ctx, bareSrv.url, st.key)
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	if !bytes.Equal(bare.body, real.body) {
		return nil, fmt.Errorf("bare body %q differs from wxtoken's %q", bare.body, real.body)
	}
	if err := sameHeaders(real.header, bare.header); err != nil {
		return nil, err
	}

	res = &result{sizes: map[string]int{"wxtoken": len(real.body), "bare": len(bare.body)}}
	var loaders []*loader
	defer func() {
		for _, l := range loaders {
			l.close()
		}
	}()
	for _, t := range []target{
		{name: "wxtoken", url: st.api.url, key: st.key, size: len(real.body)},
		{name: "bare", url: bareSrv.url, key: st.key, size: len(bare.body)},
	} {
		l, err := newLoader(ctx, t, o.conns, max(o.duration, o.warmup))
		if err != nil {
			return nil, err
		}
		loaders = append(loaders, l)
	}

	fmt.Fprintf(stdout, "wxbench: GET %s, %d-byte body; %d connections; %d rounds of %s per target after %s warmup; GOMAXPROCS %d, %s\n",
		tokenPath, len(real.body), o.conns, o.rounds, o.duration, o.warmup, runtime.GOMAXPROCS(0), runtime.Version())
	if o.warmup > 0 {
		for _, l := range loaders {
			r := l.run(ctx, o.warmup)
			res.warmup = append(res.warmup, named{l.target.name, r})
			printRound(stdout, "warmup", l.target.name, r)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	if o.cpuprofile != "" {
		stop, perr := startProfile(o.cpuprofile)
		if perr != nil {
			return res, perr
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	for i := range o.rounds {
		for _, l := range loaders {
			r := l.run(ctx, o.duration)
			res.rounds = append(res.rounds, named{l.target.name, r})
			printRound(stdout, fmt.Sprintf("round %d", i+1), l.target.name, r)
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
	}
	printSummary(stdout, res, o)
	return res, nil
}

// startProfile starts a CPU profile into path; stop ends and writes it.
func startProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func printRound(w io.Writer, label, target string, r round) {
	fmt.Fprintf(w, "%-8s %-8s %7.0f req/s  p50 %s  p99 %s  max %7s  %8d requests  %5.1f allocs/req",
		label, target, r.rate(), ms(r.p50), ms(r.p99), ms(r.max), r.requests, r.allocs())
	if r.cpu > 0 {
		fmt.Fprintf(w, "  %s cpu/req", us(r.cpuPerReq()))
	}
	if r.errors > 0 {
		fmt.Fprintf(w, "  %d ERRORS, first: %v", r.errors, r.err)
	}
	fmt.Fprintln(w)
}

// summary is one target's median round.
type summary struct {
	rate     float64
	p50, p99 time.Duration
	cpu      time.Duration // per request
	requests int
}

func summarize(rounds []round) summary {
	var s summary
	var rates, p50s, p99s, cpus []float64
	for _, r := range rounds {
		rates = append(rates, r.rate())
		p50s = append(p50s, float64(r.p50))
		p99s = append(p99s, float64(r.p99))
		cpus = append(cpus, float64(r.cpuPerReq()))
		s.requests += r.requests
	}
	s.rate = median(rates)
	s.p50, s.p99 = time.Duration(median(p50s)), time.Duration(median(p99s))
	s.cpu = time.Duration(median(cpus))
	return s
}

func printSummary(w io.Writer, res *result, o options) {
	wx, bare := res.of("wxtoken"), res.of("bare")
	sw, sb := summarize(wx), summarize(bare)
	var ratios []string
	for i := range min(len(wx), len(bare)) {
		ratios = append(ratios, fmt.Sprintf("%.2f", ratio(wx[i].rate(), bare[i].rate())))
	}
	fmt.Fprintf(w, "\nmedian of %d rounds of %s, %d connections (per-round ratios %s):\n",
		o.rounds, o.duration, o.conns, strings.Join(ratios, " "))
	fmt.Fprintf(w, "wxtoken: %.0f req/s p50 %s p99 %s | bare: %.0f req/s p50 %s p99 %s | ratio %.2f\n",
		sw.rate, ms(sw.p50), ms(sw.p99), sb.rate, ms(sb.p50), ms(sb.p99), ratio(sw.rate, sb.rate))
	fmt.Fprintf(w, "requests: wxtoken %d, bare %d (measured rounds; body %d bytes each)\n",
		sw.requests, sb.requests, res.sizes["wxtoken"])
	if sw.cpu > 0 && sb.cpu > 0 {
		fmt.Fprintf(w, "cpu per request (whole process, load included): wxtoken %s, bare %s | ratio bare/wxtoken %.2f\n",
			us(sw.cpu), us(sb.cpu), ratio(float64(sb.cpu), float64(sw.cpu)))
	}
}

// median is the middle value of xs, or the mean of the two middle ones.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// us formats d in microseconds.
func us(d time.Duration) string {
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}

// ms formats d in milliseconds, fine enough for sub-millisecond latencies.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
