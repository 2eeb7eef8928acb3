package main

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// The scale scenario: a third-party platform imports n authorizers into a
// real wxtoken process, which fetches each one's first token from a fake
// WeChat; the process is then killed (SIGKILL) and started again on the
// same data, which must serve every stored token at once without a fetch.
//
//	go run ./cmd/wxbench scale [-n 100000] [-batch 1000] [-latency 0] [-concurrency 0] [-sample 1000] [-settle 5s] [-bin PATH] [-env NAME=VALUE]
//
// wxtoken runs as its own process ("wxtoken serve", built into a temporary
// directory unless -bin names a binary), so its memory is its own: the
// report gives its resident set (VmRSS, split into anonymous memory and
// file pages, which include the bbolt file mapped into memory), its peak
// resident set (VmHWM), and its Go heap after a collection, read from the
// profiler it serves on loopback with debug.listen. The fake WeChat runs in
// this process on loopback; -latency makes each of its token calls take
// that long, as WeChat's do, so that the import's time can be set against
// what the upstream concurrency (refresh.concurrency, default 16) allows:
// n × latency / concurrency.

// scaleOptions are the scale command's flags.
type scaleOptions struct {
	n           int
	batch       int
	latency     time.Duration
	concurrency int
	sample      int
	settle      time.Duration
	bin         string
	env         []string // added to wxtoken's environment
	timeout     time.Duration
}

func (o scaleOptions) validate() error {
	switch {
	case o.n < 1:
		return fmt.Errorf("-n must be at least 1, got %d", o.n)
	case o.batch < 1 || o.batch > 1000:
		return fmt.Errorf("-batch must be 1 to 1000 (the import's limit), got %d", o.batch)
	case o.latency < 0:
		return fmt.Errorf("-latency must not be negative, got %s", o.latency)
	case o.concurrency < 0:
		return fmt.Errorf("-concurrency must not be negative, got %d", o.concurrency)
	case o.sample < 1:
		return fmt.Errorf("-sample must be at least 1, got %d", o.sample)
	case o.settle < 0:
		return fmt.Errorf("-settle must not be negative, got %s", o.settle)
	}
	return nil
}

// runScale parses the scale command's flags and runs it.
func runScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wxbench scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o scaleOptions
	fs.IntVar(&o.n, "n", 100_000, "authorizers to import")
	fs.IntVar(&o.batch, "batch", 1000, "authorizers per import call")
	fs.DurationVar(&o.latency, "latency", 0, "how long the fake WeChat takes to answer each token call")
	fs.IntVar(&o.concurrency, "concurrency", 0, "wxtoken's refresh.concurrency (0: its default)")
	fs.IntVar(&o.sample, "sample", 1000, "tokens fetched through the API right after the restart, chosen at random")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait before memory is measured")
	fs.StringVar(&o.bin, "bin", "", "wxtoken binary to run (default: build ./cmd/wxtoken into a temporary directory)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.Func("env", "`NAME=VALUE` added to wxtoken's environment, such as GOMEMLIMIT=200MiB (repeatable)", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return fmt.Errorf("want NAME=VALUE, got %q", v)
		}
		o.env = append(o.env, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, err := scale(ctx, o, stdout)
	if res != nil {
		res.print(stdout)
	}
	return err
}

// memory is what a process holds.
type memory struct {
	rss, rssAnon, rssFile, hwm int64 // bytes, from /proc/<pid>/status
	heapAlloc, heapSys         int64 // bytes, Go heap after a collection
}

func (m memory) String() string {
	return fmt.Sprintf("RSS %s (anon %s, file %s), peak RSS %s; Go heap after GC %s (heap from OS %s)",
		mb(m.rss), mb(m.rssAnon), mb(m.rssFile), mb(m.hwm), mb(m.heapAlloc), mb(m.heapSys))
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// scaleResult is one run's measurements.
type scaleResult struct {
	o scaleOptions
	// importCalls is the time the import calls took; imported, from the
	// first call until every authorizer was served.
	importCalls, imported time.Duration
	importFetches         int // api_authorizer_token calls during the import
	afterImport           memory

	// From starting the killed process again until /healthz answered,
	// until every sampled token was served, and until the listing showed
	// every authorizer with a valid token.
	toHealthz, toSample, toListing time.Duration
	restartFetches                 int // token calls of any kind after the kill
	afterRestart                   memory
	bad                            []string // what went wrong, if anything
}

func (r *scaleResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nscale: %d authorizers, %d per import call, upstream latency %s, concurrency %s, wxtoken environment %q\n",
		r.o.n, r.o.batch, r.o.latency, orDefault(r.o.concurrency), r.o.env)
	if r.imported > 0 {
		rate := float64(r.o.n) / r.imported.Seconds()
		fmt.Fprintf(w, "import + first fetch: %s (%.0f authorizers/s; the import calls took %s; %d fetches)\n",
			r.imported.Round(time.Millisecond), rate, r.importCalls.Round(time.Millisecond), r.importFetches)
		if r.o.latency > 0 {
			c := r.o.concurrency
			if c == 0 {
				c = 16
			}
			bound := time.Duration(int64(r.o.latency) * int64(r.o.n) / int64(c))
			fmt.Fprintf(w, "  the upstream alone needs n × latency / concurrency = %s\n", bound.Round(time.Millisecond))
		}
		fmt.Fprintf(w, "after import (%s settle): %s\n", r.o.settle, r.afterImport)
	}
	if r.toHealthz > 0 {
		fmt.Fprintf(w, "restart after kill -9: /healthz after %s; %d sampled tokens served after %s; listing all served after %s\n",
			r.toHealthz.Round(time.Millisecond), min(r.o.sample, r.o.n), r.toSample.Round(time.Millisecond), r.toListing.Round(time.Millisecond))
		fmt.Fprintf(w, "fetches during restart: %d\n", r.restartFetches)
		fmt.Fprintf(w, "after restart (%s settle): %s\n", r.o.settle, r.afterRestart)
	}
	for _, b := range r.bad {
		fmt.Fprintln(w, "FAILED:", b)
	}
}

func orDefault(n int) string {
	if n == 0 {
		return "default (16)"
	}
	return strconv.Itoa(n)
}

// err reports the run's failed checks.
func (r *scaleResult) err() error {
	if len(r.bad) > 0 {
		return fmt.Errorf("%d checks failed; the first: %s", len(r.bad), r.bad[0])
	}
	return nil
}

// The platform the scenario imports into.
var scaleComp = wxtest.Component{AppID: "wx00000000000c5ca1", Secret: "scale-secret", Token: "scale-token",
	EncodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}

const platID = "plat"

// scale runs the scenario. It returns what it measured, with the checks
// that failed in bad, or an error that stopped it.
func scale(ctx context.Context, o scaleOptions, progress io.Writer) (res *scaleResult, err error) {
	dir, err := os.MkdirTemp("", "wxbench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "wxtoken")
		fmt.Fprintln(progress, "building wxtoken")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/wxtoken/wxtoken/cmd/wxtoken")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %w\n%s", err, out)
		}
	}

	fake := wxtest.New(wxtest.Config{})
	defer fake.Close()
	fake.AddComponent(scaleComp)
	fmt.Fprintf(progress, "authorizing %d accounts at the fake WeChat\n", o.n)
	list := make([]importItem, o.n)
	for i := range list {
		id := fmt.Sprintf("wxa%015x", i+1)
		refresh, err := fake.Grant(scaleComp.AppID, id)
		if err != nil {
			return nil, err
		}
		list[i] = importItem{AppID: id, RefreshToken: refresh}
	}
	if o.latency > 0 {
		fake.SetFault("", wxtest.Fault{Delay: o.latency})
	}
	up, err := serve("fakewx", fake, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer up.close()

	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	key := crand.Text()
	cfgPath := filepath.Join(dir, "wxtoken.yaml")
	if err := os.WriteFile(cfgPath, []byte(scaleConfig(o, dir, apiAddr, debugAddr, up.url, key)), 0o600); err != nil {
		return nil, err
	}
	fake.SetPushTarget(scaleComp.AppID, "http://"+apiAddr+"/callback/component/"+platID, nil)
	c := &apiClient{base: "http://" + apiAddr, debug: "http://" + debugAddr, key: key,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 5 * time.Minute}}
	defer c.http.CloseIdleConnections()

	res = &scaleResult{o: o}
	logPath := filepath.Join(dir, "wxtoken.log")
	p, err := startProcess(ctx, bin, cfgPath, logPath, o.env)
	if err != nil {
		return res, err
	}
	defer func() { p.kill() }()
	if _, err := c.waitHealthy(ctx); err != nil {
		return res, withLog(err, logPath)
	}
	if err := c.waitToken(ctx, platID); err != nil {
		return res, withLog(fmt.Errorf("the platform's component token: %w", err), logPath)
	}

	// Import, 1,000 per call, and wait until every authorizer is served.
	fmt.Fprintf(progress, "importing %d authorizers, %d per call\n", o.n, o.batch)
	calls := func() int { return fake.Stats(scaleComp.AppID).AuthorizerTokenCalls }
	fetchesBefore := calls()
	start := time.Now()
	for i := 0; i < len(list); i += o.batch {
		if err := c.importBatch(ctx, list[i:min(i+o.batch, len(list))]); err != nil {
			return res, withLog(err, logPath)
		}
	}
	res.importCalls = time.Since(start)
	if err := c.waitReady(ctx); err != nil {
		return res, withLog(err, logPath)
	}
	res.imported = time.Since(start)
	res.importFetches = calls() - fetchesBefore
	fmt.Fprintf(progress, "imported and fetched in %s; checking the listing\n", res.imported.Round(time.Millisecond))
	if err := c.checkListing(ctx, o.n, res); err != nil {
		return res, err
	}
	if res.afterImport, err = c.measure(ctx, p.pid(), o.settle); err != nil {
		return res, err
	}

	// The tokens of a random sample, to compare after the restart.
	sample := make(map[string]string)
	for _, i := range rand.Perm(len(list))[:min(o.sample, len(list))] {
		tok, err := c.token(ctx, list[i].AppID)
		if err != nil {
			return res, err
		}
		sample[list[i].AppID] = tok
	}

	fmt.Fprintln(progress, "kill -9 and restart")
	p.kill()
	all := func() int {
		s := fake.Stats(scaleComp.AppID)
		return s.AuthorizerTokenCalls + s.ComponentTokenCalls + s.StartPushCalls
	}
	before := all()
	start = time.Now()
	if p, err = startProcess(ctx, bin, cfgPath, logPath, o.env); err != nil {
		return res, err
	}
	if res.toHealthz, err = c.waitHealthy(ctx); err != nil {
		return res, withLog(err, logPath)
	}
	bad := c.checkSample(ctx, sample)
	res.toSample = time.Since(start)
	res.bad = append(res.bad, bad...)
	if err := c.checkListing(ctx, o.n, res); err != nil {
		return res, err
	}
	res.toListing = time.Since(start)
	if res.afterRestart, err = c.measure(ctx, p.pid(), o.settle); err != nil {
		return res, err
	}
	if res.restartFetches = all() - before; res.restartFetches != 0 {
		res.bad = append(res.bad, fmt.Sprintf("%d token calls reached WeChat after the restart, want 0", res.restartFetches))
	}
	return res, nil
}

// importItem is one authorizer of an import call.
type importItem struct {
	AppID        string `json:"authorizer_appid"`
	RefreshToken string `json:"authorizer_refresh_token"`
}

// scaleConfig is wxtoken's configuration file for the scenario.
func scaleConfig(o scaleOptions, dir, apiAddr, debugAddr, upstream, key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\ndata_dir: %s\n", apiAddr, filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "upstream: {api: %s, api_failover: []}\n", upstream)
	if o.concurrency > 0 {
		fmt.Fprintf(&b, "refresh: {concurrency: %d}\n", o.concurrency)
	}
	fmt.Fprintf(&b, "debug: {listen: %s}\n", debugAddr)
	fmt.Fprintf(&b, "credentials:\n  - {id: %s, kind: component, component_appid: %s, secret: %s, token: %s, encoding_aes_key: %s}\n",
		platID, scaleComp.AppID, scaleComp.Secret, scaleComp.Token, scaleComp.EncodingAESKey)
	fmt.Fprintf(&b, "clients:\n  - {name: bench, key: %s, allow: [%s, %s/*], import: [%s]}\n", key, platID, platID, platID)
	return b.String()
}

// freeAddr returns a loopback address with a port free at the moment.
// wxtoken is given fixed ports so that it keeps them across the restart.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// process is a running wxtoken.
type process struct {
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
}

// startProcess runs "wxtoken serve" with env added to this process's
// environment, appending its log to logPath.
func startProcess(ctx context.Context, bin, cfgPath, logPath string, env []string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &process{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// kill ends the process with SIGKILL, as a crash or the OOM killer
// would, and waits for it.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
	p.log.Close()
}

// withLog adds the end of wxtoken's log to err.
func withLog(err error, logPath string) error {
	b, _ := os.ReadFile(logPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return fmt.Errorf("%w\nwxtoken's log ends:\n%s", err, b)
}

// apiClient talks to wxtoken's API and profiler.
type apiClient struct {
	base, debug, key string
	http             *http.Client
}

// get sends a GET with the client key and decodes a 200 answer into v.
func (c *apiClient) get(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK || v == nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.Unmarshal(body, v)
}

// poll calls try every few milliseconds until it reports done, an error,
// or ctx ends.
func poll(ctx context.Context, every time.Duration, try func() (bool, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		done, err := try()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitHealthy waits until /healthz answers 200 and returns how long that
// took.
func (c *apiClient) waitHealthy(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := poll(ctx, 2*time.Millisecond, func() (bool, error) {
		status, _ := c.get(ctx, c.base+"/healthz", nil)
		return status == http.StatusOK, nil
	})
	if err != nil {
		return 0, fmt.Errorf("/healthz did not answer 200: %w", err)
	}
	return time.Since(start), nil
}

// waitReady waits until /readyz answers 200: every credential has a valid
// token or a known cause (which checkListing then refuses).
func (c *apiClient) waitReady(ctx context.Context) error {
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		status, err := c.get(ctx, c.base+"/readyz", nil)
		return status == http.StatusOK, err
	})
}

// waitToken waits until id's token is served.
func (c *apiClient) waitToken(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		_, err := c.token(ctx, id)
		return err == nil, nil
	})
}

// token returns id's current token.
func (c *apiClient) token(ctx context.Context, id string) (string, error) {
	var reply struct {
		AccessToken string `json:"access_token"`
	}
	status, err := c.get(ctx, c.base+"/v1/tokens/"+id, &reply)
	if err == nil && (status != http.StatusOK || reply.AccessToken == "") {
		err = fmt.Errorf("GET /v1/tokens/%s: status %d", id, status)
	}
	return reply.AccessToken, err
}

// importBatch posts one import call and checks that it imported them all.
func (c *apiClient) importBatch(ctx context.Context, list []importItem) error {
	body, err := json.Marshal(map[string]any{"authorizers": list})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/components/"+platID+"/authorizers", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var reply struct {
		Imported int `json:"imported"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &reply) != nil || reply.Imported != len(list) {
		return fmt.Errorf("import of %d authorizers: %s: %.300s", len(list), resp.Status, b)
	}
	return nil
}

// checkListing pages through the platform's authorizers and adds to
// res.bad unless there are n, every one with a valid token.
func (c *apiClient) checkListing(ctx context.Context, n int, res *scaleResult) error {
	seen, ok := 0, 0
	var firstBad string
	cursor := ""
	for {
		var page struct {
			Authorizers []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"authorizers"`
			Next string `json:"next_cursor"`
		}
		status, err := c.get(ctx, c.base+"/v1/components/"+platID+"/authorizers?limit=1000&cursor="+cursor, &page)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("listing authorizers: status %d: %v", status, err)
		}
		for _, a := range page.Authorizers {
			seen++
			if a.State == "ok" {
				ok++
			} else if firstBad == "" {
				firstBad = a.ID + " is " + a.State
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if seen != n || ok != n {
		res.bad = append(res.bad, fmt.Sprintf("listing: %d authorizers, %d with a valid token; want %d and %d (%s)", seen, ok, n, n, firstBad))
	}
	return nil
}

// checkSample fetches every sampled token, a few at a time, and reports
// those not served or not the one served before.
func (c *apiClient) checkSample(ctx context.Context, sample map[string]string) []string {
	ids := make(chan string)
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range ids {
				tok, err := c.token(ctx, id)
				if err == nil && tok == sample[id] {
					continue
				}
				mu.Lock()
				if err != nil {
					bad = append(bad, fmt.Sprintf("after the restart %s: %v", id, err))
				} else {
					bad = append(bad, fmt.Sprintf("after the restart %s has another token than before", id))
				}
				mu.Unlock()
			}
		})
	}
	for id := range sample {
		ids <- id
	}
	close(ids)
	wg.Wait()
	return bad
}

// measure waits settle, then reads the process's resident set and its Go
// heap after a collection.
func (c *apiClient) measure(ctx context.Context, pid int, settle time.Duration) (memory, error) {
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return memory{}, ctx.Err()
	}
	var m memory
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.debug+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return m, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return m, fmt.Errorf("heap profile: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return m, err
	}
	// The text profile ends with runtime.MemStats, read after the
	// collection gc=1 asks for.
	m.heapAlloc = memStat(body, "HeapAlloc")
	m.heapSys = memStat(body, "HeapSys")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("resident set: %w", err)
	}
	m.rss = procStat(status, "VmRSS")
	m.rssAnon = procStat(status, "RssAnon")
	m.rssFile = procStat(status, "RssFile")
	m.hwm = procStat(status, "VmHWM")
	return m, nil
}

// memStat reads "# name = value" from a text heap profile.
func memStat(profile []byte, name string) int64 {
	m := regexp.MustCompile(`(?m)^# ` + name + ` = (\d+)$`).FindSubmatch(profile)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

// procStat reads "name:   value kB" from /proc/<pid>/status, in bytes.
func procStat(status []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return kb << 10
	}
	return -1
}
