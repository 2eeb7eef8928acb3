package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

const adminUsage = `usage: wxtoken admin [-url URL] <command> [arguments]

The admin key is read from $WXTOKEN_ADMIN_KEY, or from the file -key-file
names. Answers are printed as JSON.

credentials:
  list                       every credential, with its state
  show ID                    one credential, with its settings (never its secret)
  add FILE                   add the credential FILE describes, in the configuration
                             file's own shape (YAML or JSON; ${NAME} is read from
                             the environment, so the secret need not be in FILE)
  update ID FILE             replace its settings (the secret is kept if FILE has none)
  remove ID                  stop and forget it (its stored token is kept)
  disable ID | enable ID     stop serving it, or start again
  refresh ID                 fetch a new token now
  unblock ID                 lift a block (a spent quota, a refused secret) and retry now
  clear-quota ID             ask WeChat to reset the account's daily quota (10 a month)
clients:
  clients                    every client
  add-client NAME -allow ID,ID [-import ID] [-sdk NAME]
                             add a client; its new key is printed once
  update-client NAME -allow ID,ID [-import ID] [-sdk NAME]
  remove-client NAME
  rotate-key NAME [-grace 24h]
                             a new key, printed once; the old one works for the grace
  disable-client NAME | enable-client NAME
other:
  audit [-actor A] [-action X] [-target T] [-result ok|refused|failed] [-limit N] [-before ID]
  whoami
`

// adminCmd runs `wxtoken admin`: each command is one request to the admin
// API of a running server.
func adminCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	base := fs.String("url", "http://127.0.0.1:8750", "the server's API address")
	keyFile := fs.String("key-file", "", "a file holding the admin key (default: $WXTOKEN_ADMIN_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("admin: no command given")
	}
	key := os.Getenv("WXTOKEN_ADMIN_KEY")
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return errors.New("admin: no admin key: set WXTOKEN_ADMIN_KEY or -key-file")
	}
	req, err := adminRequest(rest[0], rest[1:], stderr)
	if err != nil {
		return err
	}
	c := &adminClient{base: strings.TrimRight(*base, "/"), key: key, http: &http.Client{Timeout: 60 * time.Second}}
	return c.do(ctx, req, stdout)
}

// adminReq is one admin API request.
type adminReq struct {
	method, path string
	body         any
}

// adminRequest turns a command and its arguments into a request.
func adminRequest(cmd string, args []string, stderr io.Writer) (*adminReq, error) {
	esc := url.PathEscape
	one := func(what string) (string, error) {
		if len(args) != 1 || args[0] == "" {
			return "", fmt.Errorf("admin %s: want one %s", cmd, what)
		}
		return args[0], nil
	}
	credAction := map[string]string{"disable": "disable", "enable": "enable", "refresh": "refresh", "unblock": "unblock", "clear-quota": "clear_quota"}
	clientAction := map[string]string{"disable-client": "disable", "enable-client": "enable"}
	switch {
	case cmd == "whoami":
		return &adminReq{"GET", "/v1/admin/whoami", nil}, nil
	case cmd == "list" || cmd == "credentials":
		return &adminReq{"GET", "/v1/admin/credentials", nil}, nil
	case cmd == "clients":
		return &adminReq{"GET", "/v1/admin/clients", nil}, nil
	case cmd == "show":
		id, err := one("credential id")
		return &adminReq{"GET", "/v1/admin/credentials/" + esc(id), nil}, err
	case cmd == "remove":
		id, err := one("credential id")
		return &adminReq{"DELETE", "/v1/admin/credentials/" + esc(id), nil}, err
	case credAction[cmd] != "":
		id, err := one("credential id")
		return &adminReq{"POST", "/v1/admin/credentials/" + esc(id) + "/" + credAction[cmd], nil}, err
	case cmd == "add":
		file, err := one("file")
		if err != nil {
			return nil, err
		}
		cr, err := readCredential(file)
		return &adminReq{"POST", "/v1/admin/credentials", cr}, err
	case cmd == "update":
		if len(args) != 2 {
			return nil, errors.New("admin update: want a credential id and a file")
		}
		cr, err := readCredential(args[1])
		return &adminReq{"PUT", "/v1/admin/credentials/" + esc(args[0]), cr}, err
	case cmd == "add-client" || cmd == "update-client":
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return nil, fmt.Errorf("admin %s: want a client name first", cmd)
		}
		name := args[0]
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		allow := fs.String("allow", "", "credential ids the client may use, comma-separated (\"*\": all)")
		imports := fs.String("import", "", "platforms the client may import authorizers into, comma-separated")
		sdk := fs.String("sdk", "", "the WeChat SDK the client uses through the facade")
		if err := fs.Parse(args[1:]); err != nil {
			return nil, err
		}
		body := map[string]any{"allow": list(*allow), "import": list(*imports), "sdk": *sdk}
		if cmd == "add-client" {
			body["name"] = name
			return &adminReq{"POST", "/v1/admin/clients", body}, nil
		}
		return &adminReq{"PUT", "/v1/admin/clients/" + esc(name), body}, nil
	case cmd == "remove-client":
		name, err := one("client name")
		return &adminReq{"DELETE", "/v1/admin/clients/" + esc(name), nil}, err
	case clientAction[cmd] != "":
		name, err := one("client name")
		return &adminReq{"POST", "/v1/admin/clients/" + esc(name) + "/" + clientAction[cmd], nil}, err
	case cmd == "rotate-key":
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return nil, errors.New("admin rotate-key: want a client name first")
		}
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		grace := fs.String("grace", "", "how long the old key keeps working (default 24h; 0s ends it now)")
		if err := fs.Parse(args[1:]); err != nil {
			return nil, err
		}
		var body any
		if *grace != "" {
			body = map[string]string{"grace": *grace}
		}
		return &adminReq{"POST", "/v1/admin/clients/" + esc(args[0]) + "/rotate", body}, nil
	case cmd == "audit":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		q := url.Values{}
		for _, f := range []string{"actor", "action", "target", "result", "limit", "before"} {
			fs.Func(f, "only events with this "+f, func(v string) error { q.Set(f, v); return nil })
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return &adminReq{"GET", "/v1/admin/audit?" + q.Encode(), nil}, nil
	}
	return nil, fmt.Errorf("admin: unknown command %q; see wxtoken admin -h", cmd)
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// readCredential reads one credential in the configuration file's shape.
func readCredential(file string) (*config.Credential, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	cr, err := config.ParseCredential(b, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("admin: %s: %w", file, err)
	}
	return &cr, nil
}

type adminClient struct {
	base, key string
	http      *http.Client
}

// do sends req and prints the answer; a refusal is an error carrying the
// server's message.
func (c *adminClient) do(ctx context.Context, req *adminReq, stdout io.Writer) error {
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.base+req.path, body)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	hr.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin: reading the answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("admin: %s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("admin: %s", resp.Status)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") != nil {
		_, err = stdout.Write(b)
		return err
	}
	_, err = stdout.Write(pretty.Bytes())
	return err
}
