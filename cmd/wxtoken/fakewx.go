package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8760", "address to listen on")
	var apps, corps pairs
	fs.Var(&apps, "app", "an Official Account or Mini Program as appid:secret (repeatable)")
	fs.Var(&corps, "corp", "a WeCom application as corpid:secret (repeatable)")
	var fc wxtest.Config
	fs.DurationVar(&fc.Lifetime, "lifetime", 7200*time.Second, "lifetime of issued tokens")
	fs.DurationVar(&fc.Overlap, "overlap", 5*time.Minute, "how long a replaced token stays valid")
	fs.IntVar(&fc.DailyLimit, "daily-limit", 2000, "token calls per app per Beijing day")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fake := wxtest.New(fc)
	for _, a := range apps {
		fake.AddApp(a[0], a[1])
	}
	for _, c := range corps {
		fake.AddCorp(c[0], c[1])
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fake WeChat listening on http://%s (%d apps, %d WeCom apps)\n", ln.Addr(), len(apps), len(corps))
	return serveUntil(ctx, ln, fake)
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
