package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// bareCmd is the bare handler of wxbench wrk, run as a process of its
// own: it serves the bytes of the file -body, with the headers wxtoken
// sends, from an http.Server with wxtoken's settings, until interrupted.
// It prints the line bareListening and its URL once it listens.
func bareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wxbench bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bodyPath := fs.String("body", "", "file holding the body to answer with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bodyPath == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: wxbench bare -body FILE")
	}
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := serve("bare", constant(body), log)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, bareListening+s.url)
	<-ctx.Done()
	return s.close()
}
