package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/wxtest"
)

// pairs is a repeatable "id:secret" flag.
type pairs [][2]string

func (p *pairs) String() string { return fmt.Sprint(len(*p)) }

func (p *pairs) Set(v string) error {
	id, secret, ok := strings.Cut(v, ":")
	if !ok || id == "" || secret == "" {
		return errors.New(`want "id:secret"`)
	}
	*p = append(*p, [2]string{id, secret})
	return nil
}

func fakewxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakewx", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8760", "address to listen on")
	var apps, corps pairs
	fs.Var(&apps, "app", "an Official Account or Mini Program as appid:secret (repeatable)")
	fs.Var(&corps, "corp", "a WeCom application as corpid:secret (repeatable)")
	var comps components
	fs.Var(&comps, "component", "a third-party platform as appid:secret:token:encoding_aes_key (repeatable)")
	pushTo := fs.String("push-to", "", "URL template for pushes to platforms; {appid} is replaced, e.g. http://127.0.0.1:8750/callback/component/{appid}")
	ticketEvery := fs.Duration("ticket-every", 10*time.Minute, "how often each platform is pushed a component_verify_ticket (with --push-to), and each suite a suite_ticket (with --suite-push-to)")
	var suites suiteFlags
	fs.Var(&suites, "suite", "a WeCom suite as suite_id:secret:token:encoding_aes_key (repeatable; an id starting dk is a custom app template)")
	suitePushTo := fs.String("suite-push-to", "", "URL template for pushes to suites; {suite_id} is replaced, e.g. http://127.0.0.1:8750/callback/suite/{suite_id}")
	var installs pairs
	fs.Var(&installs, "install", "a corp installing a suite, as suite_id:corpid, once the suite has its first ticket (repeatable; with --suite-push-to)")
	var fc wxtest.Config
	fs.DurationVar(&fc.Lifetime, "lifetime", 7200*time.Second, "lifetime of issued tokens")
	fs.DurationVar(&fc.Overlap, "overlap", 5*time.Minute, "how long a replaced token stays valid")
	stableRenew := fs.Duration("stable-renew", 0, "how close to expiry a stable_token call gets a new token instead of the current one\n(default lifetime/24: WeChat's 5m of 2h; 0 means only at expiry)")
	fs.IntVar(&fc.DailyLimit, "daily-limit", 2000, "token calls per app per Beijing day")
	summary := "Runs the fake WeChat alone, for integration tests: token endpoints, quotas, and pushes\nto third-party platforms and WeCom suites."
	if help, err := parseFlags(fs, summary, args, stdout, stderr); help || err != nil {
		return err
	}
	renewSet := false
	fs.Visit(func(f *flag.Flag) { renewSet = renewSet || f.Name == "stable-renew" })
	switch {
	case fc.Lifetime <= 0:
		return fmt.Errorf("--lifetime must be positive, got %s", fc.Lifetime)
	case !renewSet:
		// WeChat renews a stable token in its last 5 minutes of 2 hours;
		// the fake's own default, 5 minutes whatever the lifetime, would
		// renew on every call once --lifetime is under 5 minutes.
		fc.StableRenewBefore = fc.Lifetime / 24
	case *stableRenew < 0 || *stableRenew >= fc.Lifetime:
		return fmt.Errorf("--stable-renew must be from 0 to less than --lifetime (%s), got %s", fc.Lifetime, *stableRenew)
	case *stableRenew == 0:
		fc.StableRenewBefore = -1 // the fake's "only at expiry"
	default:
		fc.StableRenewBefore = *stableRenew
	}
	fake := wxtest.New(fc)
	for _, a := range apps {
		fake.AddApp(a[0], a[1])
	}
	for _, c := range corps {
		fake.AddCorp(c[0], c[1])
	}
	defer fake.Close()
	for _, c := range comps {
		fake.AddComponent(c)
		if *pushTo != "" {
			fake.SetPushTarget(c.AppID, strings.ReplaceAll(*pushTo, "{appid}", c.AppID), nil)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	for _, su := range suites {
		fake.AddSuite(su)
		if *suitePushTo != "" {
			fake.SetPushTarget(su.SuiteID, strings.ReplaceAll(*suitePushTo, "{suite_id}", su.SuiteID), nil)
		}
	}
	for _, in := range installs {
		if !slices.ContainsFunc(suites, func(su wxtest.Suite) bool { return su.SuiteID == in[0] }) {
			return fmt.Errorf("--install %s:%s: no --suite %s", in[0], in[1], in[0])
		}
	}
	fmt.Fprintf(stdout, "fake WeChat listening on http://%s (%d apps, %d WeCom apps, %d platforms, %d suites)\n", ln.Addr(), len(apps), len(corps), len(comps), len(suites))
	var pushed pushTargets
	if *pushTo != "" {
		pushed.comps = comps
	}
	if *suitePushTo != "" {
		pushed.suites, pushed.installs = suites, installs
	}
	if len(pushed.comps)+len(pushed.suites) > 0 {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { // owned here: ends with ctx, waited for above
			defer close(done)
			pushTickets(ctx, fake, pushed, *ticketEvery, stdout)
		}()
	}
	return serveUntil(ctx, ln, fake)
}

// pushTargets are what the fake pushes tickets to, and the corps that
// install a suite once it has its first.
type pushTargets struct {
	comps    components
	suites   suiteFlags
	installs pairs
}

// pushTickets pushes each platform and suite a ticket now and then every
// period, as WeChat and WeCom do, until ctx is done; after the first
// round, the corps given install their suites.
func pushTickets(ctx context.Context, fake *wxtest.Fake, to pushTargets, every time.Duration, out io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	for first := true; ; first = false {
		for _, c := range to.comps {
			if _, err := fake.PushTicket(ctx, c.AppID); err != nil && ctx.Err() == nil {
				fmt.Fprintf(out, "ticket push to %s failed: %v\n", c.AppID, err)
			}
		}
		for _, su := range to.suites {
			if _, err := fake.PushSuiteTicket(ctx, su.SuiteID); err != nil && ctx.Err() == nil {
				fmt.Fprintf(out, "suite_ticket push to %s failed: %v\n", su.SuiteID, err)
			}
		}
		if first {
			// The install's code is exchanged with the suite's token,
			// fetched once the ticket arrived; WeCom pushes an install
			// again when it is not acknowledged, and so does this.
			for _, in := range to.installs {
				for try := 0; ; try++ {
					_, err := fake.CreateAuth(ctx, in[0], in[1])
					if err == nil || try == 5 || ctx.Err() != nil {
						if err != nil && ctx.Err() == nil {
							fmt.Fprintf(out, "install of %s in %s failed: %v\n", in[0], in[1], err)
						}
						break
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// suiteFlags is a repeatable "suite_id:secret:token:encoding_aes_key" flag.
type suiteFlags []wxtest.Suite

func (s *suiteFlags) String() string { return fmt.Sprint(len(*s)) }

func (s *suiteFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 4 || slices.Contains(parts, "") {
		return errors.New(`want "suite_id:secret:token:encoding_aes_key"`)
	}
	*s = append(*s, wxtest.Suite{SuiteID: parts[0], Secret: parts[1], Token: parts[2], EncodingAESKey: parts[3]})
	return nil
}

// components is a repeatable "appid:secret:token:encoding_aes_key" flag.
type components []wxtest.Component

func (c *components) String() string { return fmt.Sprint(len(*c)) }

func (c *components) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 4 || slices.Contains(parts, "") {
		return errors.New(`want "appid:secret:token:encoding_aes_key"`)
	}
	*c = append(*c, wxtest.Component{AppID: parts[0], Secret: parts[1], Token: parts[2], EncodingAESKey: parts[3]})
	return nil
}

// serveUntil serves h on ln until ctx is done.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-done
	return nil
}
