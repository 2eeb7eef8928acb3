package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseFlags parses a command's args. -h or --help prints the command's
// usage to stdout and reports help, so that the command exits 0 without
// running; a bad flag prints the usage to stderr and is an error.
func parseFlags(fs *flag.FlagSet, summary string, args []string, stdout, stderr io.Writer) (help bool, err error) {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: wxtoken %s [flags]\n\n%s\n\nflags:\n", fs.Name(), summary)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	fs.SetOutput(stderr) // where the flag package reports a bad flag
	fs.Usage = func() {} // printed below, to the stream that fits
	err = fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return true, nil
	case err != nil:
		usage(stderr)
		return false, err
	case fs.NArg() > 0:
		usage(stderr)
		return false, fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return false, nil
}
