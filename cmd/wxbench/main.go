// Command wxbench measures how fast a real wxtoken API serves
// GET /v1/tokens/{id}, against a bare net/http handler that answers the same
// request with a constant body of the same bytes and headers.
//
//	go run ./cmd/wxbench [-c 64] [-d 10s] [-rounds 3] [-warmup 2s] [-cpuprofile FILE] [-redis ADDR]
//
// With -redis, wxtoken keeps its state in that Redis, as instances of a
// cluster do; tokens are still served from memory, so the ratio should
// stay where it is with the embedded store.
//
// Everything runs in one process on loopback: a fake WeChat (wxtest), a bolt
// store in a temporary directory (removed at exit), a token.Manager with one
// classic Official Account credential, and server.New behind an http.Server
// with the settings the wxtoken command uses. The bare handler gets an
// http.Server of its own with the same settings. Its body is the exact bytes
// of one real token response, so both targets put the same bytes on the wire
// and the difference between them is what the wxtoken handler path costs:
// routing, authentication, the token lookup and building the body.
//
// The load is -c connections, each a goroutine with its own keep-alive
// connection, sending requests back to back for -d. A request counts only
// if it answers 200 with a body of the expected size; anything else is an
// error, and any error makes wxbench exit 1 after printing the results.
// After a -warmup against each target, the two take turns for -rounds
// rounds each (wxtoken, bare, wxtoken, bare, ...), so that noise from the
// machine falls on both alike.
//
// # Reading the result
//
// Each round prints its throughput, latency percentiles (exact, from every
// request's latency), the worst request, the request count, and the heap
// allocations and CPU time per request of the whole process. The last
// block gives, per target, the median round's throughput, p50 and p99 and
// the total request count, then the ratio of the median throughputs,
// wxtoken/bare:
//
//	wxtoken: 41234 req/s p50 0.90ms p99 1.80ms | bare: 43000 req/s p50 0.80ms p99 1.70ms | ratio 0.96
//
// and the median CPU time per request of each, with their ratio
// bare/wxtoken: what the throughput ratio would be if CPU alone limited
// throughput.
//
// A ratio near 1 means the handler path costs little next to net/http
// itself. The load generator shares the CPU with both servers, so it
// adds the same cost to both sides and pulls the ratio towards 1; the
// difference in allocs/req is the handler's own allocations. Latency
// follows from throughput: with -c requests always in flight, the mean
// latency is -c divided by the throughput (Little's law), so compare the
// two targets' latencies with each other, not with a fixed budget, and
// use a smaller -c to see the latency of a lightly loaded server. The
// per-round ratios show the noise: when they disagree widely the machine
// was busy with something else (contention raises the CPU per request
// too, through context switches and cold caches), so run again, run more
// rounds or profile. A low ratio is a finding, not a failure: wxbench
// exits 0 whatever the numbers.
//
// -cpuprofile writes a CPU profile of the measured rounds (not the
// warmup). Server goroutines carry the label target=wxtoken or
// target=bare and load goroutines load=wxtoken or load=bare, so one side
// can be looked at alone:
//
//	go tool pprof -tagfocus target=wxtoken -top wxbench.prof
//	go tool pprof -tagfocus target=wxtoken -peek 'server\.' wxbench.prof
//
// # Against wrk, process against process
//
//	go run ./cmd/wxbench wrk [-t 2] [-c 64] [-d 5s] [-rounds 3] [-warmup 1s] [-procs 1] [-wxtoken BIN] [-against bare|nometrics]
//
// makes the same comparison with wrk as the load and each server a process
// of its own, as wxtoken runs in production: it builds the wxtoken binary
// (go build, into a temporary directory; -wxtoken runs a given one),
// starts it with a configuration serving one classic credential from a
// fake WeChat that wxbench runs, and starts wxbench itself again as the
// bare handler, serving the exact bytes and headers of one of wxtoken's
// answers from an http.Server with wxtoken's settings. Both run with
// GOMAXPROCS=-procs. After a -warmup run against each, wrk -t -c -d
// --latency loads them in turn, wxtoken first, for -rounds rounds each.
// With -against nometrics the second process is wxtoken again, from the
// same binary and with metrics.api false: the ratios are then what
// counting the API's requests costs.
//
// Each round prints wrk's throughput, p50, p99 and maximum latency and
// request count, and the server process's CPU time per request (from
// /proc, on Linux). The summary gives each target's median throughput,
// p50 and p99, the per-round ratios, and the ratios of the medians,
// wxtoken/bare, for throughput and for p99:
//
//	throughput ratio wxtoken/bare 1.064 | p99 ratio wxtoken/bare 1.02
//	server cpu per request: wxtoken 23.9µs, bare 25.6µs | ratio bare/wxtoken 1.072
//
// With the load generator in other processes, the server's CPU per
// request is the steadiest of these numbers: throughput and latency move
// with whatever else the machine runs, the CPU a request costs less
// (contention raises it too, through context switches and cold caches).
// Any non-2xx answer or socket error makes wxbench exit 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	conns      int
	duration   time.Duration
	rounds     int
	warmup     time.Duration
	cpuprofile string
	redis      string
}

func (o options) validate() error {
	switch {
	case o.conns < 1:
		return fmt.Errorf("-c must be at least 1, got %d", o.conns)
	case o.duration <= 0:
		return fmt.Errorf("-d must be positive, got %s", o.duration)
	case o.rounds < 1:
		return fmt.Errorf("-rounds must be at least 1, got %d", o.rounds)
	case o.warmup < 0:
		return fmt.Errorf("-warmup must not be negative, got %s", o.warmup)
	}
	return nil
}

// run parses args, runs the benchmark and prints its report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "wrk":
			return wrkCmd(ctx, args[1:], stdout, stderr)
		case "bare": // the bare handler of wxbench wrk, started by it
			return bareCmd(ctx, args[1:], stdout, stderr)
		case "scale":
			return runScale(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("wxbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.conns, "c", 64, "concurrent connections, one goroutine each")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "length of each measured round")
	fs.IntVar(&o.rounds, "rounds", 3, "measured rounds per target, alternating")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load on each target before the rounds")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured rounds to `file`")
	fs.StringVar(&o.redis, "redis", "", "keep wxtoken's state in the Redis at `host:port` (under a fresh key prefix) instead of a bolt file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return err
	}
	res, err := bench(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	return res.err()
}
