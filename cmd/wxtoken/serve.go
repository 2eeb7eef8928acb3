package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/wxtoken/wxtoken/config"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "wxtoken.yaml", "configuration file")
	if help, err := parseFlags(fs, "Runs the server on the configuration file; logs go to stderr.", args, stdout, stderr); help || err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg, Logger: newLogger(cfg.Log, stderr)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	err = m.Wait(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return err
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
