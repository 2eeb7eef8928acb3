package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// healthcheckCmd asks a wxtoken whether it is ready and succeeds only on
// 200: the container image has no curl, so its HEALTHCHECK runs this.
func healthcheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	target := fs.String("url", "http://127.0.0.1:8750/readyz", "the endpoint to ask")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if help, err := parseFlags(fs, "Exits 0 if the URL answers 200, else 1; for container health checks.", args, stdout, stderr); help || err != nil {
		return err
	}
	if u, err := url.Parse(*target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck: --url: want an http(s) URL, got %q", *target)
	}
	if *timeout <= 0 {
		return fmt.Errorf("healthcheck: --timeout must be positive, got %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection close cleanly
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *target, resp.Status)
	}
	fmt.Fprintf(stdout, "ok: %s answered %s\n", *target, resp.Status)
	return nil
}
