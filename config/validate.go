package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/wxtoken/wxtoken/wechat"
)

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8750"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Upstream.API == "" {
		c.Upstream.API = wechat.DefaultAPI
	}
	if c.Upstream.WeCom == "" {
		c.Upstream.WeCom = wechat.DefaultWeCom
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.Credentials {
		cr := &c.Credentials[i]
		if cr.Kind == KindMP {
			if cr.ID == "" {
				cr.ID = cr.AppID
			}
			if cr.Mode == "" {
				cr.Mode = ModeStable
			}
		}
	}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate checks every rule and reports all violations, each naming its
// field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	}
	for field, u := range map[string]string{"upstream.api": c.Upstream.API, "upstream.wecom": c.Upstream.WeCom} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(field, "want an http(s) URL, got %q", u)
		}
	}
	if c.Upstream.Timeout < 0 {
		bad("upstream.timeout", "must not be negative")
	}
	r := c.Refresh
	if r.At < 0 || r.At >= 1 {
		bad("refresh.at", "must be a fraction in (0, 1), got %v", r.At)
	}
	if r.Jitter < 0 || r.Jitter >= 0.5 {
		bad("refresh.jitter", "must be a fraction in [0, 0.5), got %v", r.Jitter)
	}
	for field, d := range map[string]int64{"refresh.overlap": int64(r.Overlap), "refresh.min_force_interval": int64(r.MinForceInterval),
		"refresh.max_backoff": int64(r.MaxBackoff), "refresh.config_retry": int64(r.ConfigRetry), "refresh.concurrency": int64(r.Concurrency)} {
		if d < 0 {
			bad(field, "must not be negative")
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	ids := map[string]bool{}
	for i, cr := range c.Credentials {
		f := fmt.Sprintf("credentials[%d]", i)
		if cr.ID != "" {
			f = fmt.Sprintf("credentials[%d] (%s)", i, cr.ID)
		}
		errs = append(errs, cr.validate(f)...)
		if ids[cr.ID] {
			bad(f+".id", "duplicate id %q", cr.ID)
		}
		ids[cr.ID] = true
	}
	names := map[string]bool{}
	keys := map[[32]byte]bool{}
	for i, cl := range c.Clients {
		f := fmt.Sprintf("clients[%d]", i)
		if cl.Name != "" {
			f = fmt.Sprintf("clients[%d] (%s)", i, cl.Name)
		}
		errs = append(errs, cl.validate(f, ids)...)
		if names[cl.Name] {
			bad(f+".name", "duplicate name %q", cl.Name)
		}
		names[cl.Name] = true
		if h := cl.KeyHash(); keys[h] {
			bad(f+".key", "same key as another client")
		} else {
			keys[h] = true
		}
	}
	return errors.Join(errs...)
}

func (cr Credential) validate(f string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", f, field, fmt.Sprintf(format, args...)))
	}
	if !idPattern.MatchString(cr.ID) {
		bad("id", "want [A-Za-z0-9._-]{1,64}, got %q", cr.ID)
	}
	if cr.Secret == "" {
		bad("secret", "required")
	}
	switch cr.Kind {
	case KindMP:
		if cr.AppID == "" {
			bad("appid", "required for kind mp")
		}
		if cr.CorpID != "" {
			bad("corpid", "not used by kind mp")
		}
		if cr.Mode != ModeStable && cr.Mode != ModeClassic {
			bad("mode", "want stable or classic, got %q", cr.Mode)
		}
	case KindWeCom:
		if cr.CorpID == "" {
			bad("corpid", "required for kind wecom")
		}
		if cr.AppID != "" {
			bad("appid", "not used by kind wecom")
		}
		if cr.Mode != "" {
			bad("mode", "not used by kind wecom")
		}
	default:
		bad("kind", "want mp or wecom, got %q", cr.Kind)
	}
	return errs
}

func (cl Client) validate(f string, ids map[string]bool) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", f, field, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(cl.Name) == "" {
		bad("name", "required")
	}
	switch {
	case cl.Key != "" && cl.KeySHA256 != "":
		bad("key", "set key or key_sha256, not both")
	case cl.Key != "":
		if len(cl.Key) < MinKeyLen {
			bad("key", "at least %d characters", MinKeyLen)
		}
	case cl.KeySHA256 != "":
		if b, err := hex.DecodeString(cl.KeySHA256); err != nil || len(b) != 32 {
			bad("key_sha256", "want 64 hex digits")
		}
	default:
		bad("key", "required (or key_sha256)")
	}
	if len(cl.Allow) == 0 {
		bad("allow", "required: credential ids, or \"*\"")
	}
	for _, id := range cl.Allow {
		if id != "*" && !ids[id] {
			bad("allow", "unknown credential %q", id)
		}
	}
	return errs
}
