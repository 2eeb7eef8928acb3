package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/wxtoken/wxtoken/config"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "wxtoken.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
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
