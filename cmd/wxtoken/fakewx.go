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
	ticketEvery := fs.Duration("ticket-every", 10*time.Minute, "how often each platform is pushed a component_verify_ticket (with --push-to)")
	var fc wxtest.Config
	fs.DurationVar(&fc.Lifetime, "lifetime", 7200*time.Second, "lifetime of issued tokens")
	fs.DurationVar(&fc.Overlap, "overlap", 5*time.Minute, "how long a replaced token stays valid")
	stableRenew := fs.Duration("stable-renew", 0, "how close to expiry a stable_token call gets a new token instead of the current one\n(default lifetime/24: WeChat's 5m of 2h; 0 means only at expiry)")
	fs.IntVar(&fc.DailyLimit, "daily-limit", 2000, "token calls per app per Beijing day")
	summary := "Runs the fake WeChat alone, for integration tests: token endpoints, quotas, and pushes\nto third-party platforms."
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
	fmt.Fprintf(stdout, "fake WeChat listening on http://%s (%d apps, %d WeCom apps, %d platforms)\n", ln.Addr(), len(apps), len(corps), len(comps))
	if *pushTo != "" && len(comps) > 0 {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { // owned here: ends with ctx, waited for above
			defer close(done)
			pushTickets(ctx, fake, comps, *ticketEvery, stdout)
		}()
	}
	return serveUntil(ctx, ln, fake)
}

// pushTickets pushes each platform a ticket now and then every period,
// as WeChat does, until ctx is done.
func pushTickets(ctx context.Context, fake *wxtest.Fake, comps components, every time.Duration, out io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, c := range comps {
			if _, err := fake.PushTicket(ctx, c.AppID); err != nil && ctx.Err() == nil {
				fmt.Fprintf(out, "ticket push to %s failed: %v\n", c.AppID, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
