package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/wxtoken/wxtoken/config"
)

// checkConfigCmd validates a configuration file as serve would read it,
// without opening the store or calling anyone.
func checkConfigCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", "wxtoken.yaml", "configuration file")
	summary := `Checks the configuration file as serve would read it, with the environment's
${NAME} values, without opening the store or calling WeChat. Prints
"ok: N credentials, M clients", or every problem, one a line, and fails.
Values taken from the environment are shown as their ${NAME}.`
	if help, err := parseFlags(fs, summary, args, stdout, stderr); help || err != nil {
		return err
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg, problems := checkConfig(data, os.LookupEnv)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		noun := "problems"
		if len(problems) == 1 {
			noun = "problem"
		}
		return fmt.Errorf("config %s: %d %s", *path, len(problems), noun)
	}
	fmt.Fprintf(stdout, "ok: %d credentials, %d clients\n", len(cfg.Credentials), len(cfg.Clients))
	return nil
}

// minHidden is the shortest value from the environment that checkConfig
// hides: shorter ones (a port, a database number, "true") are no secret,
// and hiding every "0" would garble the messages.
const minHidden = 6

// checkConfig parses data as config.Parse does and returns the
// configuration, or every problem, one a line. config.Parse stops at the
// first variable that is not set; here each one is named, and the rest of
// the file is still checked with those variables read as empty (so a
// field that needs one says so too). Every value the environment gave,
// of minHidden characters or more, is replaced by its ${NAME} in what is
// returned, so that a secret never reaches a terminal or a CI log,
// whichever message would have quoted it.
func checkConfig(data []byte, lookup func(string) (string, bool)) (*config.Config, []string) {
	refs, err := config.EnvRefs(data)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var problems []string
	hide := map[string]string{} // value → ${NAME}
	reported := map[string]bool{}
	for _, r := range refs {
		v, ok := lookup(r.Name)
		switch {
		case !ok && !reported[r.Name]:
			reported[r.Name] = true
			problems = append(problems, fmt.Sprintf("line %d: environment variable %s is not set", r.Line, r.Name))
		case ok && len(v) >= minHidden:
			hide[v] = "${" + r.Name + "}"
		}
	}
	cfg, err := config.Parse(data, func(name string) (string, bool) {
		v, _ := lookup(name)
		return v, true
	})
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				problems = append(problems, line)
			}
		}
	} else if _, err := masterKeys(cfg.Store, lookup); err != nil {
		problems = append(problems, err.Error()) // names the variable or file, never a key
	}
	if len(problems) == 0 {
		return cfg, nil
	}
	// Longest first, so that a value containing another is hidden whole.
	values := make([]string, 0, len(hide))
	for v := range hide {
		values = append(values, v)
	}
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	for i := range problems {
		for _, v := range values {
			problems[i] = strings.ReplaceAll(problems[i], v, hide[v])
		}
	}
	return nil, problems
}
