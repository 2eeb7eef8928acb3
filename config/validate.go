package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/facade"
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
		if c.Upstream.APIFailover == nil {
			c.Upstream.APIFailover = []string{wechat.DefaultAPIFailover}
		}
	}
	if c.Store.Type == "" {
		c.Store.Type = StoreBolt
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
	if c.Callbacks.MaxSkew == 0 {
		c.Callbacks.MaxSkew = 5 * time.Minute
	}
	if c.Memory.GCPercent == 0 {
		c.Memory.GCPercent = DefaultGCPercent
	}
	for i := range c.Credentials {
		cr := &c.Credentials[i]
		if r, ok := c.kinds().Rules(cr.Kind); ok {
			r.SetDefaults(cr)
		}
	}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// authorizerAppID is what an authorizer's appid may look like (as the
// component package takes it).
var authorizerAppID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks every rule and reports all violations, each naming its
// field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if msg := checkHostPort(c.Listen); msg != "" {
		bad("listen", "%s", msg)
	}
	for field, u := range map[string]string{"upstream.api": c.Upstream.API, "upstream.wecom": c.Upstream.WeCom} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(field, "want an http(s) URL, got %q", u)
		}
	}
	for i, u := range c.Upstream.APIFailover {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(fmt.Sprintf("upstream.api_failover[%d]", i), "want an http(s) URL, got %q", u)
		}
	}
	switch c.Store.Type {
	case StoreBolt:
		if len(c.Store.Addrs) > 0 {
			bad("store.addrs", "only for store.type redis")
		}
	case StoreRedis:
		if len(c.Store.Addrs) == 0 {
			bad("store.addrs", "required for store.type redis")
		}
		for i, a := range c.Store.Addrs {
			if msg := checkHostPort(a); msg != "" {
				bad(fmt.Sprintf("store.addrs[%d]", i), "%s", msg)
			}
		}
		if c.Store.MasterName != "" && c.Store.Cluster {
			bad("store.cluster", "Sentinel (master_name) and Cluster exclude each other")
		}
	default:
		bad("store.type", "want bolt or redis, got %q", c.Store.Type)
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
		"refresh.max_backoff": int64(r.MaxBackoff), "refresh.config_retry": int64(r.ConfigRetry), "refresh.concurrency": int64(r.Concurrency), "refresh.force_budget": int64(r.ForceBudget),
		"refresh.lock_ttl": int64(r.LockTTL), "refresh.resync": int64(r.Resync), "refresh.serve_wait": int64(r.ServeWait)} {
		if d < 0 {
			bad(field, "must not be negative")
		}
	}
	timeout := c.Upstream.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second // token.Config's default
	}
	if r.LockTTL > 0 && r.LockTTL <= timeout {
		bad("refresh.lock_ttl", "must exceed upstream.timeout (%s)", timeout)
	}
	overlap := r.Overlap
	if overlap == 0 {
		overlap = 5 * time.Minute // token.Config's default
	}
	// A classic or WeCom call replaces the token at WeChat, which keeps the
	// old one valid for the overlap; so while a refresh's call hangs, the
	// current token is served only until the overlap after the call began.
	// Were the overlap no longer than a call may take, every upstream hang
	// would turn the credential unavailable, and available again on retry.
	if r.Overlap >= 0 && overlap <= timeout {
		bad("refresh.overlap", "must exceed upstream.timeout (%s), got %s", timeout, overlap)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	if c.Debug.Listen != "" {
		if msg := checkHostPort(c.Debug.Listen); msg != "" {
			bad("debug.listen", "%s", msg)
		} else if !loopback(c.Debug.Listen) {
			bad("debug.listen", "want a loopback address (127.0.0.1, ::1 or localhost), got %q: the profiler has no authentication", c.Debug.Listen)
		}
	}
	if g := c.Memory.GCPercent; g < 10 || g > 1000 {
		bad("memory.gc_percent", "want 10 to 1000, got %d", g)
	}
	if c.Metrics.Listen != "" {
		if msg := checkHostPort(c.Metrics.Listen); msg != "" {
			bad("metrics.listen", "%s", msg)
		}
	}
	if c.WeChatListen != "" {
		if msg := checkHostPort(c.WeChatListen); msg != "" {
			bad("wechat_listen", "%s", msg)
		}
	}
	if c.Callbacks.MaxSkew < 0 {
		bad("callbacks.max_skew", "must not be negative")
	}
	ids := map[string]bool{}
	components := c.authorizerParents()
	for i, cr := range c.Credentials {
		f := fmt.Sprintf("credentials[%d]", i)
		if cr.ID != "" {
			f = fmt.Sprintf("credentials[%d] (%s)", i, cr.ID)
		}
		errs = append(errs, cr.validate(f, c.kinds())...)
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
		errs = append(errs, cl.validate(f, ids, components)...)
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
	admins := map[string]bool{}
	for i, a := range c.Admins {
		f := fmt.Sprintf("admins[%d]", i)
		if a.Name != "" {
			f = fmt.Sprintf("admins[%d] (%s)", i, a.Name)
		}
		errs = append(errs, a.validate(f)...)
		if admins[a.Name] {
			bad(f+".name", "duplicate name %q", a.Name)
		}
		admins[a.Name] = true
		if h := a.KeyHash(); keys[h] {
			bad(f+".key", "same key as a client or another admin: admin keys must be apart")
		} else {
			keys[h] = true
		}
	}
	return errors.Join(errs...)
}

// ValidateCredential applies a credential's defaults and checks it alone,
// as Validate checks one in the file: for a credential added at run time.
func ValidateCredential(cr *Credential) error {
	ks := installedKinds()
	if r, ok := ks.Rules(cr.Kind); ok {
		r.SetDefaults(cr)
	}
	return errors.Join(cr.validate("credential", ks)...)
}

// ValidateClient checks a client alone, as Validate checks one in the
// file, against the credential ids known (credentials) and the platforms
// (kind component) among them: for a client added at run time.
func ValidateClient(cl Client, credentials, components map[string]bool) error {
	return errors.Join(cl.validate("client", credentials, components)...)
}

func (a Admin) validate(f string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", f, field, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(a.Name) == "" {
		bad("name", "required")
	}
	checkKey(a.Key, a.KeySHA256, bad)
	switch a.Role {
	case RoleViewer, RoleOperator, RoleAdmin:
	default:
		bad("role", "want viewer, operator or admin, got %q", a.Role)
	}
	return errs
}

// checkKey checks a bearer key given as itself or as its SHA-256.
func checkKey(key, sum string, bad func(field, format string, args ...any)) {
	switch {
	case key != "" && sum != "":
		bad("key", "set key or key_sha256, not both")
	case key != "":
		if len(key) < MinKeyLen {
			bad("key", "at least %d characters", MinKeyLen)
		}
	case sum != "":
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			bad("key_sha256", "want 64 hex digits")
		}
	default:
		bad("key", "required (or key_sha256)")
	}
}

func (cr Credential) validate(f string, ks Kinds) []error {
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
	validateKind(ks, cr, bad)
	return errs
}

// ValidateCallback checks the callback block of a credential of kind
// kind; withKey requires the EncodingAESKey (WeCom callbacks are always
// encrypted).
func ValidateCallback(cb *Callback, kind string, withKey bool, bad func(field, format string, args ...any)) {
	if cb.Token == "" {
		bad("callback.token", "required")
	}
	if cb.EncodingAESKey != "" && !ValidAESKey(cb.EncodingAESKey) {
		bad("callback.encoding_aes_key", "want the 43-character EncodingAESKey")
	}
	if withKey && cb.EncodingAESKey == "" {
		bad("callback.encoding_aes_key", "required for kind %s: its callbacks are always encrypted", kind)
	}
}

// checkHostPort describes what is wrong with a host:port address, or
// returns "". The port is checked here, where the message can name the
// field, rather than when the address is used.
func checkHostPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Sprintf("want host:port, got %q", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > 65535 {
			return fmt.Sprintf("port %s out of range (0 to 65535)", port)
		}
		return ""
	}
	if _, err := net.LookupPort("tcp", port); err != nil { // a service name, from /etc/services
		return fmt.Sprintf("unknown port %q", port)
	}
	return ""
}

// loopback reports whether addr's host is a loopback address.
func loopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidAESKey checks an EncodingAESKey's shape: 43 characters of base64
// without its padding. callback.NewCrypter is the final judge when the
// server starts.
func ValidAESKey(k string) bool {
	if len(k) != 43 {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(k + "=")
	return err == nil
}

func (cl Client) validate(f string, ids, components map[string]bool) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", f, field, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(cl.Name) == "" {
		bad("name", "required")
	}
	checkKey(cl.Key, cl.KeySHA256, bad)
	if len(cl.Allow) == 0 {
		bad("allow", "required: credential ids, or \"*\"")
	}
	for _, id := range cl.Allow {
		// A platform's authorizers: all of them, or one by its id,
		// {platform}/{appid}.
		if comp, appid, ok := strings.Cut(id, "/"); ok && components[comp] && (appid == "*" || authorizerAppID.MatchString(appid)) {
			continue
		}
		if id != "*" && !ids[id] {
			bad("allow", "unknown credential %q", id)
		}
	}
	for _, id := range cl.Import {
		if !components[id] {
			bad("import", "%q is not a credential of kind component", id)
		}
	}
	if err := facade.CheckSDK(cl.SDK); err != nil {
		bad("sdk", "%v", err)
	}
	return errs
}
