// Command wxtoken is the central token server for WeChat credentials.
//
//	wxtoken serve --config wxtoken.yaml   run the server
//	wxtoken demo                          a server and a fake WeChat, to try it
//	wxtoken fakewx --listen ADDR          the fake WeChat alone, for tests
//	wxtoken admin <command>               manage a running server
//	wxtoken check-config --config FILE    check a configuration file
//	wxtoken healthcheck                   exit 0 if the server is ready
//	wxtoken keygen                        print a new master key
//	wxtoken rekey --config wxtoken.yaml   seal the store under the master key
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wxtoken:", err)
		os.Exit(1)
	}
}

const usage = `usage: wxtoken <command> [flags]

commands:
  serve    run the server:                wxtoken serve --config wxtoken.yaml
  demo     run a server against a built-in fake WeChat, with sample credentials
  fakewx   run the fake WeChat alone:     wxtoken fakewx --listen 127.0.0.1:8760
  admin    manage a running server:       wxtoken admin list (key in $WXTOKEN_ADMIN_KEY)
  check-config  check a file without starting: wxtoken check-config --config wxtoken.yaml
  healthcheck   exit 0 if /readyz answers 200, for container health checks
  keygen   print a new master key for WXTOKEN_MASTER_KEY (secrets sealed at rest)
  rekey    seal the store under the master key:  wxtoken rekey --config wxtoken.yaml
  version  print the version, VCS revision and Go release (also --version)

Run 'wxtoken <command> -h' for a command's flags.
`

// run dispatches a subcommand; it returns when ctx is done or the command
// fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "fakewx":
		return fakewxCmd(ctx, args[1:], stdout, stderr)
	case "admin":
		return adminCmd(ctx, args[1:], stdout, stderr)
	case "check-config":
		return checkConfigCmd(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(ctx, args[1:], stdout, stderr)
	case "keygen":
		return keygenCmd(args[1:], stdout, stderr)
	case "rekey":
		return rekeyCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
