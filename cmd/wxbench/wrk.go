package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// wrkOptions are the flags of wxbench wrk.
type wrkOptions struct {
	threads  int
	conns    int
	duration time.Duration
	warmup   time.Duration
	rounds   int
	procs    int    // GOMAXPROCS of each server
	wxtoken  string // a built wxtoken binary; empty builds one
	wrk      string
	against  string // what wxtoken is compared with: againstBare or againstNoMetrics
}

// What wxbench wrk compares wxtoken with.
const (
	// againstBare: a bare net/http handler writing the same bytes.
	againstBare = "bare"
	// againstNoMetrics: wxtoken itself with metrics.api false, which
	// leaves the API's requests uncounted: the cost of counting them.
	againstNoMetrics = "nometrics"
)

func (o wrkOptions) validate() error {
	switch {
	case o.threads < 1:
		return fmt.Errorf("-t must be at least 1, got %d", o.threads)
	case o.conns < o.threads:
		return fmt.Errorf("-c must be at least -t (%d), got %d", o.threads, o.conns)
	case o.duration < time.Second:
		return fmt.Errorf("-d must be at least 1s (wrk counts whole seconds), got %s", o.duration)
	case o.warmup != 0 && o.warmup < time.Second:
		return fmt.Errorf("-warmup must be 0 or at least 1s, got %s", o.warmup)
	case o.rounds < 1:
		return fmt.Errorf("-rounds must be at least 1, got %d", o.rounds)
	case o.procs < 1:
		return fmt.Errorf("-procs must be at least 1, got %d", o.procs)
	case o.against != againstBare && o.against != againstNoMetrics:
		return fmt.Errorf("-against must be %s or %s, got %q", againstBare, againstNoMetrics, o.against)
	}
	return nil
}

const wrkUsage = `usage: wxbench wrk [flags]

Runs the real wxtoken binary and a bare net/http handler process writing the
same bytes (or, with -against nometrics, a second wxtoken process that does
not count its API requests), each with GOMAXPROCS=-procs, and loads them in
turn with 'wrk -t -c -d --latency' for -rounds rounds each. Needs wrk on PATH
(Debian: apt-get install wrk) and, unless -wxtoken is given, the go command
to build wxtoken from this repository.

`

// wrkCmd is wxbench wrk.
func wrkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wxbench wrk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), wrkUsage)
		fs.PrintDefaults()
	}
	var o wrkOptions
	fs.IntVar(&o.threads, "t", 2, "wrk threads")
	fs.IntVar(&o.conns, "c", 64, "wrk connections")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "length of each measured round, whole seconds")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured wrk run against each target first; 0 for none")
	fs.IntVar(&o.rounds, "rounds", 3, "measured rounds per target, alternating")
	fs.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of each server process")
	fs.StringVar(&o.wxtoken, "wxtoken", "", "the wxtoken binary to run (default: go build ./cmd/wxtoken into a temporary directory)")
	fs.StringVar(&o.wrk, "wrk", "wrk", "the wrk command")
	fs.StringVar(&o.against, "against", againstBare, "compare wxtoken with: bare (a net/http handler writing the same bytes) or nometrics (wxtoken with metrics.api false)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return err
	}
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("%w (Debian: apt-get install wrk)", err)
	}
	res, err := wrkBench(ctx, o, stdout, stderr)
	if err != nil {
		return err
	}
	return res.err()
}

// wrkRound is one wrk run against one target.
type wrkRound struct {
	target string
	wrkResult
	cpu time.Duration // the server process's CPU time over the run; 0 if unknown
}

// cpuPerReq is the server's CPU time per request: the cost of a request
// apart from time spent waiting for a CPU that wrk or another process held.
func (r wrkRound) cpuPerReq() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

// wrkRun is a whole wrk comparison.
type wrkRun struct {
	size   int
	warmup []wrkRound
	rounds []wrkRound
}

func (res *wrkRun) of(target string) []wrkRound {
	var out []wrkRound
	for _, r := range res.rounds {
		if r.target == target {
			out = append(out, r)
		}
	}
	return out
}

func (res *wrkRun) err() error {
	var total, failed int
	for _, r := range slices.Concat(res.warmup, res.rounds) {
		total += r.requests
		failed += r.failed()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed (non-2xx answers or socket errors)", failed, total)
	}
	return nil
}

// wrkTarget is a server process under load.
type wrkTarget struct {
	name string
	url  string // of the token
	proc *proc
}

// wrkBench starts both servers, runs the rounds and prints the report.
func wrkBench(ctx context.Context, o wrkOptions, stdout, stderr io.Writer) (res *wrkRun, err error) {
	dir, err := os.MkdirTemp("", "wxbench-wrk-")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()

	bin := o.wxtoken
	if bin == "" {
		bin = filepath.Join(dir, "wxtoken")
		if runtime.GOOS == "windows" {
			bin += ".exe"
		}
		if _, err := runOut(ctx, "go", "build", "-o", bin, "github.com/wxtoken/wxtoken/cmd/wxtoken"); err != nil {
			return nil, fmt.Errorf("build wxtoken (run wxbench from the repository, or give -wxtoken): %w", err)
		}
	}

	// The fake WeChat runs in this process, which is idle while wrk
	// runs: wxtoken fetches its one token at start and not again within
	// the fake's 2-hour lifetime.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fake := wxtest.New(wxtest.Config{})
	fake.AddApp(credAppID, credSecret)
	fakeSrv, err := serve("fakewx", fake, log)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, fakeSrv.close()) }()

	key := rand.Text()
	cfgPath := filepath.Join(dir, "wxtoken.yaml")
	if err := os.WriteFile(cfgPath, wxtokenConfig(filepath.Join(dir, "data"), fakeSrv.url, key, true), 0o600); err != nil {
		return nil, err
	}
	env := []string{"GOMAXPROCS=" + strconv.Itoa(o.procs)}
	wxp, addr, err := startProc("wxtoken", bin, []string{"serve", "-config", cfgPath}, env, listeningAddr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, wxp.stop()) }()
	wx := wrkTarget{name: "wxtoken", url: "http://" + addr + tokenPath, proc: wxp}
	real, err := fetchWhenReady(ctx, "http://"+addr, key, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("wxtoken: %w", err)
	}

	var other wrkTarget
	if o.against == againstNoMetrics {
		if b, err := getBody(ctx, "http://"+addr+"/metrics"); err != nil || !bytes.Contains(b, []byte("wxtoken_api_requests_total")) {
			return nil, fmt.Errorf("wxtoken does not count its API requests (%v), so there is nothing to compare", err)
		}
		other, err = startNoMetrics(ctx, bin, dir, fakeSrv.url, key, env, len(real.body))
	} else {
		other, err = startBare(ctx, dir, key, env, real)
	}
	if other.proc != nil {
		defer func() { err = errors.Join(err, other.proc.stop()) }()
	}
	if err != nil {
		return nil, err
	}

	res = &wrkRun{size: len(real.body)}
	fmt.Fprintf(stdout, "wxbench wrk: GET %s, %d-byte body; wxtoken against %s; wrk -t%d -c%d -d%s --latency, %d rounds per target after %s warmup; servers at GOMAXPROCS=%d, %d CPUs\n",
		tokenPath, len(real.body), other.name, o.threads, o.conns, o.duration, o.rounds, o.warmup, o.procs, runtime.NumCPU())
	targets := []wrkTarget{wx, other}
	if o.warmup > 0 {
		for _, t := range targets {
			r, err := runWrk(ctx, o, t, key, o.warmup)
			if err != nil {
				return res, err
			}
			res.warmup = append(res.warmup, r)
			printWrkRound(stdout, "warmup", r)
		}
	}
	for i := range o.rounds {
		for _, t := range targets {
			r, err := runWrk(ctx, o, t, key, o.duration)
			if err != nil {
				return res, err
			}
			res.rounds = append(res.rounds, r)
			printWrkRound(stdout, fmt.Sprintf("round %d", i+1), r)
		}
	}
	printWrkSummary(stdout, res, o, other.name)
	return res, nil
}

// startBare starts the bare handler, serving real's body with its headers.
func startBare(ctx context.Context, dir, key string, env []string, real *response) (wrkTarget, error) {
	bodyPath := filepath.Join(dir, "body")
	if err := os.WriteFile(bodyPath, real.body, 0o600); err != nil {
		return wrkTarget{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return wrkTarget{}, err
	}
	barep, bareURL, err := startProc("bare", self, []string{"bare", "-body", bodyPath}, env, bareAddr, 30*time.Second)
	if err != nil {
		return wrkTarget{}, err
	}
	bare := wrkTarget{name: againstBare, url: bareURL + tokenPath, proc: barep}
	got, err := fetch(ctx, bareURL, key)
	if err != nil {
		return bare, fmt.Errorf("bare: %w", err)
	}
	if !bytes.Equal(got.body, real.body) {
		return bare, fmt.Errorf("bare body %q differs from wxtoken's %q", got.body, real.body)
	}
	return bare, sameHeaders(real.header, got.header)
}

// startNoMetrics starts a second wxtoken from bin, with its own data
// directory and metrics.api false. Its token is its own (the fake issues
// a new one per fetch), so its body differs from the first's in the
// token only: it must be as long.
func startNoMetrics(ctx context.Context, bin, dir, upstream, key string, env []string, size int) (wrkTarget, error) {
	cfgPath := filepath.Join(dir, "nometrics.yaml")
	if err := os.WriteFile(cfgPath, wxtokenConfig(filepath.Join(dir, "data-nometrics"), upstream, key, false), 0o600); err != nil {
		return wrkTarget{}, err
	}
	p, addr, err := startProc(againstNoMetrics, bin, []string{"serve", "-config", cfgPath}, env, listeningAddr, 30*time.Second)
	if err != nil {
		return wrkTarget{}, err
	}
	t := wrkTarget{name: againstNoMetrics, url: "http://" + addr + tokenPath, proc: p}
	got, err := fetchWhenReady(ctx, "http://"+addr, key, 10*time.Second)
	if err != nil {
		return t, fmt.Errorf("%s: %w", againstNoMetrics, err)
	}
	if len(got.body) != size {
		return t, fmt.Errorf("%s body %q is not %d bytes long, as wxtoken's is", againstNoMetrics, got.body, size)
	}
	if b, err := getBody(ctx, "http://"+addr+"/metrics"); err != nil || bytes.Contains(b, []byte("wxtoken_api_requests_total")) {
		return t, fmt.Errorf("%s still counts API requests (%v)", againstNoMetrics, err)
	}
	return t, nil
}

// getBody is the body of GET url.
func getBody(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// wxtokenConfig is a configuration serving the one benchmark credential
// from a fake WeChat at upstream, on a free loopback port, logging JSON
// so that the port can be read from the "listening" line; apiMetrics
// false leaves the API's requests uncounted.
func wxtokenConfig(dataDir, upstream, key string, apiMetrics bool) []byte {
	q := strconv.Quote
	return []byte(`listen: "127.0.0.1:0"
metrics:
  api: ` + strconv.FormatBool(apiMetrics) + `
data_dir: ` + q(dataDir) + `
upstream:
  api: ` + q(upstream) + `
  wecom: ` + q(upstream) + `
log:
  level: info
  format: json
credentials:
  - id: ` + credID + `
    kind: ` + credKind + `
    mode: classic
    appid: ` + credAppID + `
    secret: ` + credSecret + `
clients:
  - name: wxbench
    key: ` + q(key) + `
    allow: ["*"]
`)
}

// listeningAddr finds the address in wxtoken's JSON "listening" log line.
func listeningAddr(line string) string {
	var l struct{ Msg, Addr string }
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "listening" {
		return ""
	}
	return l.Addr
}

// bareListening starts the line the bare mode prints once it listens.
const bareListening = "bare handler listening on "

func bareAddr(line string) string {
	u, _ := strings.CutPrefix(line, bareListening)
	if u == line {
		return ""
	}
	return u
}

// fetchWhenReady fetches the token until wxtoken serves it.
func fetchWhenReady(ctx context.Context, base, key string, limit time.Duration) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		r, err := fetch(ctx, base, key)
		if err == nil {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no token within %s: %w", limit, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runWrk runs wrk against t for d.
func runWrk(ctx context.Context, o wrkOptions, t wrkTarget, key string, d time.Duration) (wrkRound, error) {
	if t.proc.exited() {
		return wrkRound{}, fmt.Errorf("%s exited: %v\n%s", t.name, t.proc.err, t.proc.output())
	}
	args := []string{"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--latency",
		"-H", "Authorization: Bearer " + key, t.url}
	pid := t.proc.cmd.Process.Pid
	cpu0, ok0 := procCPU(pid)
	out, err := runOut(ctx, o.wrk, args...)
	cpu1, ok1 := procCPU(pid)
	if err != nil {
		return wrkRound{}, err
	}
	wr, err := parseWrk(out)
	if err != nil {
		return wrkRound{}, fmt.Errorf("%w; wrk printed:\n%s", err, out)
	}
	r := wrkRound{target: t.name, wrkResult: wr}
	if ok0 && ok1 {
		r.cpu = cpu1 - cpu0
	}
	return r, nil
}

func printWrkRound(w io.Writer, label string, r wrkRound) {
	fmt.Fprintf(w, "%-8s %-8s %7.0f req/s  p50 %s  p99 %s  max %7s  %8d requests",
		label, r.target, r.rate, ms(r.p50), ms(r.p99), ms(r.max), r.requests)
	if r.cpu > 0 {
		fmt.Fprintf(w, "  %s server cpu/req", us(r.cpuPerReq()))
	}
	if r.failed() > 0 {
		fmt.Fprintf(w, "  %d non-2xx, %d socket ERRORS", r.non2xx, r.sockErrs)
	}
	fmt.Fprintln(w)
}

// wrkSummary is one target's medians over its rounds.
type wrkSummary struct {
	rate     float64
	p50, p99 time.Duration
	cpu      time.Duration
}

func summarizeWrk(rounds []wrkRound) wrkSummary {
	var rates, p50s, p99s, cpus []float64
	for _, r := range rounds {
		rates = append(rates, r.rate)
		p50s = append(p50s, float64(r.p50))
		p99s = append(p99s, float64(r.p99))
		cpus = append(cpus, float64(r.cpuPerReq()))
	}
	return wrkSummary{rate: median(rates), p50: time.Duration(median(p50s)), p99: time.Duration(median(p99s)),
		cpu: time.Duration(median(cpus))}
}

func printWrkSummary(w io.Writer, res *wrkRun, o wrkOptions, other string) {
	wx, bare := res.of("wxtoken"), res.of(other)
	sw, sb := summarizeWrk(wx), summarizeWrk(bare)
	var rates, p99s []string
	for i := range min(len(wx), len(bare)) {
		rates = append(rates, fmt.Sprintf("%.2f", ratio(wx[i].rate, bare[i].rate)))
		p99s = append(p99s, fmt.Sprintf("%.2f", ratio(float64(wx[i].p99), float64(bare[i].p99))))
	}
	fmt.Fprintf(w, "\nmedian of %d rounds of %s (per-round throughput ratios %s; p99 ratios %s):\n",
		o.rounds, o.duration, strings.Join(rates, " "), strings.Join(p99s, " "))
	fmt.Fprintf(w, "wxtoken: %.0f req/s p50 %s p99 %s | %s: %.0f req/s p50 %s p99 %s\n",
		sw.rate, ms(sw.p50), ms(sw.p99), other, sb.rate, ms(sb.p50), ms(sb.p99))
	fmt.Fprintf(w, "throughput ratio wxtoken/%s %.3f | p99 ratio wxtoken/%s %.2f\n",
		other, ratio(sw.rate, sb.rate), other, ratio(float64(sw.p99), float64(sb.p99)))
	if sw.cpu > 0 && sb.cpu > 0 {
		fmt.Fprintf(w, "server cpu per request: wxtoken %s, %s %s | ratio %s/wxtoken %.3f\n",
			us(sw.cpu), other, us(sb.cpu), other, ratio(float64(sb.cpu), float64(sw.cpu)))
	}
}
