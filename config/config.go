// Package config reads wxtoken's YAML configuration: ${NAME} references
// are expanded from the environment after parsing (so a secret's
// characters never confuse YAML), unknown fields are refused, and every
// rule is checked at start with a message that names the field.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file. Zero values mean the defaults
// documented on each field; Load applies them.
type Config struct {
	// Listen is the API's address (default 127.0.0.1:8750).
	Listen string `yaml:"listen"`
	// DataDir holds the embedded store (default ./data).
	DataDir string `yaml:"data_dir"`
	// Store selects where state lives: the embedded file (default) or
	// Redis, shared by several instances.
	Store Store `yaml:"store"`
	// Upstream overrides WeChat's hosts, for tests and proxies.
	Upstream Upstream `yaml:"upstream"`
	// Refresh tunes the refresh policy; the defaults suit WeChat.
	Refresh Refresh `yaml:"refresh"`
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// Callbacks tunes the endpoints WeChat pushes to.
	Callbacks Callbacks `yaml:"callbacks"`
	// Credentials are the tokens to keep fresh.
	Credentials []Credential `yaml:"credentials"`
	// Clients are the business servers allowed to ask for them.
	Clients []Client `yaml:"clients"`
	// Admins are the operators' keys for the admin API (/v1/admin/),
	// `wxtoken admin` and the dashboard; none by default, which leaves
	// the admin API closed.
	Admins []Admin `yaml:"admins"`
	// Debug serves Go's profiler, for measuring memory and CPU; off by
	// default.
	Debug Debug `yaml:"debug"`
	// Memory trades the process's memory against the collector's CPU.
	Memory Memory `yaml:"memory"`
	// Metrics places the Prometheus metrics.
	Metrics Metrics `yaml:"metrics"`
	// WeChatListen, if set, is the address of the WeChat-compatible
	// facade (package facade): WeChat's own token and ticket endpoints,
	// for SDKs whose base URL points here. Off by default.
	WeChatListen string `yaml:"wechat_listen"`

	// kindSet, when set, is checked against instead of the installed
	// kinds (ParseWith).
	kindSet Kinds
}

// Memory tunes Go's garbage collector for wxtoken.
type Memory struct {
	// GCPercent is how far, in percent of the live heap, the heap may
	// grow before the next collection (Go's GOGC; default 40, where Go's
	// own is 100). Nearly all of wxtoken's heap is the state of its
	// credentials, which stays live; the growth allowed on top of it is
	// what the process holds beyond what it needs. At 100,000
	// authorizers, 50 held 60 to 70 MB less than 100 after an import,
	// for more than twice as many collections during it, and 40 another
	// 10 to 20 MB less than 50 (README, "Many authorizers"). It applies
	// once the live heap passes 16 MiB; below, Go's default of 100 does,
	// as a low percent on a small heap collects every few hundred
	// requests for a megabyte saved. The GOGC environment variable, when
	// set, wins.
	GCPercent int `yaml:"gc_percent"`
}

// DefaultGCPercent is Memory.GCPercent's default.
const DefaultGCPercent = 40

// Debug configures the profiling endpoint.
type Debug struct {
	// Listen, if set, serves net/http/pprof (/debug/pprof/) on this
	// loopback address, such as 127.0.0.1:6060, with no authentication:
	// profiles hold no tokens or secrets, but they do show the process's
	// internals, so the address must be a loopback one.
	Listen string `yaml:"listen"`
}

// Metrics places GET /metrics.
type Metrics struct {
	// Listen, if set, serves /metrics on this address alone, rather than
	// on the API's listener, for a network that reaches metrics and not
	// the API (or the other way round).
	Listen string `yaml:"listen"`
	// API, if false, leaves the API's requests, token reads and watch
	// streams uncounted (default true); the benchmarks compare the two.
	API *bool `yaml:"api"`
}

// APIEnabled reports whether the API's requests are counted.
func (m Metrics) APIEnabled() bool { return m.API == nil || *m.API }

// Store kinds.
const (
	StoreBolt  = "bolt"
	StoreRedis = "redis"
)

// Store selects and configures the store.
type Store struct {
	// Type is bolt (default: one file in data_dir, one instance) or redis
	// (several instances sharing one Redis).
	Type string `yaml:"type"`
	// Addrs are Redis addresses: one server; the Sentinels (with
	// master_name); or Cluster nodes.
	Addrs      []string `yaml:"addrs"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	MasterName string   `yaml:"master_name"`
	// Cluster forces Cluster mode with a single configuration endpoint.
	Cluster bool `yaml:"cluster"`
	// TLS connects with TLS (system roots).
	TLS bool `yaml:"tls"`
	// KeyPrefix starts every key (default "wxtoken:").
	KeyPrefix string `yaml:"key_prefix"`
	// AllowNoPersistence accepts a Redis without appendonly. Tickets and
	// refresh tokens are then lost when Redis restarts.
	AllowNoPersistence bool `yaml:"allow_no_persistence"`
	// MasterKeyFile seals the store's values at rest with the keys in
	// this file: the first line that is neither empty nor a comment (#)
	// is the master key (32 bytes in standard base64, as "wxtoken keygen"
	// prints), later ones keys that only open, during a rotation. The
	// WXTOKEN_MASTER_KEY environment variable is the other way to give
	// the key; not both.
	MasterKeyFile string `yaml:"master_key_file"`
}

// Upstream names WeChat's hosts.
type Upstream struct {
	// API is the Official Account host (default https://api.weixin.qq.com).
	API string `yaml:"api"`
	// APIFailover are hosts tried in order when API cannot be reached
	// (default https://api2.weixin.qq.com when API is the default).
	APIFailover []string `yaml:"api_failover"`
	// WeCom is the WeCom host (default https://qyapi.weixin.qq.com).
	WeCom string `yaml:"wecom"`
	// Timeout bounds one upstream call (default 15s).
	Timeout time.Duration `yaml:"timeout"`
}

// Refresh tunes when tokens are refreshed; see token.Config.
type Refresh struct {
	// At is the fraction of a token's lifetime after which it is
	// refreshed (default 0.8), Jitter the ± spread (default 0.05).
	At     float64 `yaml:"at"`
	Jitter float64 `yaml:"jitter"`
	// Overlap is how long WeChat keeps a replaced token valid (default 5m).
	Overlap time.Duration `yaml:"overlap"`
	// MinForceInterval is the least time between fetches forced by
	// callers' reports (default 30s).
	MinForceInterval time.Duration `yaml:"min_force_interval"`
	// ServeWait is how long a request that finds no valid token waits for
	// a fetch that is due or under way (default 2s), as at a WeCom
	// rollover, where the next token exists only once the last expired.
	ServeWait time.Duration `yaml:"serve_wait"`
	// ForceBudget is how many upstream calls a credential may have made
	// today before reports stop forcing refreshes (default 1000).
	ForceBudget int `yaml:"force_budget"`
	// MaxBackoff caps retries of transient failures (default 5m).
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// ConfigRetry is how long a refused configuration waits before it is
	// tried again (default 1h).
	ConfigRetry time.Duration `yaml:"config_retry"`
	// Concurrency bounds simultaneous upstream calls (default 16).
	Concurrency int `yaml:"concurrency"`
	// LockTTL is the per-credential lease in the store (default 1m); it
	// must exceed upstream.timeout. An instance that dies while refreshing
	// is taken over once it expires.
	LockTTL time.Duration `yaml:"lock_ttl"`
	// Resync is how often every record is re-read from the store in case
	// a change notification was lost (default 1m).
	Resync time.Duration `yaml:"resync"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Callbacks tunes the endpoints WeChat pushes to.
type Callbacks struct {
	// MaxSkew is how far a push's timestamp may be from our clock, either
	// way, before it is refused as stale or replayed (default 5m).
	MaxSkew time.Duration `yaml:"max_skew"`
	// DedupWindow is how long a message's id is remembered, so that
	// WeChat's retries of a push are delivered once (default 10m, and
	// at least twice max_skew).
	DedupWindow time.Duration `yaml:"dedup_window"`
	// DeadAfter is how long a queued message is retried before it
	// becomes a dead letter (default 24h).
	DeadAfter time.Duration `yaml:"dead_after"`
	// MaxBackoff caps the wait between retries of a delivery (default 5m).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Callback is the "server configuration" of an Official Account or WeCom
// application: the token and, for encrypted mode, the EncodingAESKey.
type Callback struct {
	Token          string `yaml:"token" json:"token,omitempty"`
	EncodingAESKey string `yaml:"encoding_aes_key" json:"encoding_aes_key,omitempty"`
	// Forward are the message gateway's rules: where the messages and
	// events WeChat pushes are delivered. None: they are answered
	// "success" and dropped.
	Forward []Forward `yaml:"forward" json:"forward,omitempty"`
}

// Modes of an mp credential.
const (
	ModeStable  = "stable"
	ModeClassic = "classic"
)

// Credential is one token to keep fresh.
type Credential struct {
	// ID names it in the API; [A-Za-z0-9._-]{1,64}. Defaults to the appid
	// for kind mp; required for wecom (a corp has one token per app).
	ID string `yaml:"id" json:"id,omitempty"`
	// Kind is one of the registered kinds (package kind): mp (Official
	// Account, Mini Program, Mini Game), wecom, component, suite,
	// provider.
	Kind   string `yaml:"kind" json:"kind,omitempty"`
	AppID  string `yaml:"appid" json:"appid,omitempty"`
	CorpID string `yaml:"corpid" json:"corpid,omitempty"`
	Secret string `yaml:"secret" json:"secret,omitempty"`
	// Mode is stable (default) or classic, for kind mp.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Callback enables server URL verification for kinds mp and wecom.
	Callback *Callback `yaml:"callback" json:"callback,omitempty"`
	// Tickets are the JS-SDK tickets to keep fresh for this credential
	// (mp: jsapi, wx_card; wecom: jsapi, the corp ticket, and
	// agent_config; component: the tickets of every authorizer).
	Tickets []string `yaml:"tickets" json:"tickets,omitempty"`
	// AgentID is the WeCom application's AgentId, which its agent_config
	// ticket is signed for.
	AgentID int64 `yaml:"agentid" json:"agentid,omitempty"`

	// ComponentAppID, Token and EncodingAESKey configure kind component,
	// a third-party platform; ID defaults to ComponentAppID.
	ComponentAppID string `yaml:"component_appid" json:"component_appid,omitempty"`
	Token          string `yaml:"token" json:"token,omitempty"`
	EncodingAESKey string `yaml:"encoding_aes_key" json:"encoding_aes_key,omitempty"`

	// SuiteID configures kind suite, a WeCom third-party app (or, for an
	// id starting "dk", a custom-developed app template); ID defaults to
	// it. SuiteSecret and ProviderSecret are what WeCom's console calls
	// the secret of a suite and of a provider (kind provider); either
	// may be given instead of secret.
	SuiteID         string `yaml:"suite_id" json:"suite_id,omitempty"`
	SuiteSecret     string `yaml:"suite_secret" json:"-"`
	ProviderSecret  string `yaml:"provider_secret" json:"-"`
	PermanentCodeV1 bool   `yaml:"permanent_code_v1" json:"permanent_code_v1,omitempty"`
}

// LogValue keeps the secret out of logs.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("kind", c.Kind), slog.String("mode", c.Mode))
}

// Client is a business server's key and what it may see.
type Client struct {
	Name string `yaml:"name" json:"name,omitempty"`
	// Key is the bearer key (at least 16 characters), or KeySHA256 its
	// SHA-256 in hex, so that the file holds no usable key.
	Key       string `yaml:"key" json:"key,omitempty"`
	KeySHA256 string `yaml:"key_sha256" json:"key_sha256,omitempty"`
	// Allow lists credential ids; "*" allows all, and "<component id>/*"
	// every authorizer of that third-party platform.
	Allow []string `yaml:"allow" json:"allow,omitempty"`
	// Import lists the third-party platforms (component credential ids)
	// the client may import authorizers into. Importing writes refresh
	// tokens that cannot be fetched again, so it is a permission of its
	// own: neither allow nor "*" grants it.
	Import []string `yaml:"import" json:"import,omitempty"`
	// SDK names the WeChat SDK the client uses through the facade
	// (wechat_listen), so that the expires_in it is answered suits that
	// SDK's cache: silenceper, wxjava, co-wechat-api, easywechat,
	// wechatpy; empty for any other (facade/expires.go).
	SDK string `yaml:"sdk" json:"sdk,omitempty"`
}

// LogValue keeps the key out of logs.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.Any("allow", c.Allow), slog.Any("import", c.Import))
}

// KeyHash returns the SHA-256 of the client's key.
func (c Client) KeyHash() [32]byte { return keyHash(c.Key, c.KeySHA256) }

func keyHash(key, sum string) [32]byte {
	if key != "" {
		return sha256.Sum256([]byte(key))
	}
	var h [32]byte
	hex.Decode(h[:], []byte(sum)) // validated by Validate
	return h
}

// Admin is an operator's key for the admin API, and what it may do.
type Admin struct {
	Name string `yaml:"name"`
	// Key is the bearer key (at least 16 characters), or KeySHA256 its
	// SHA-256 in hex. It must differ from every client's key.
	Key       string `yaml:"key"`
	KeySHA256 string `yaml:"key_sha256"`
	// Role is viewer (read only), operator (also refresh, unblock,
	// clear_quota, enable and disable) or admin (also add, change and
	// remove credentials and clients, rotate client keys).
	Role string `yaml:"role"`
}

// Roles of an admin key, each allowing what the one before it does.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// KeyHash returns the SHA-256 of the admin's key.
func (a Admin) KeyHash() [32]byte { return keyHash(a.Key, a.KeySHA256) }

// LogValue keeps the key out of logs.
func (a Admin) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", a.Name), slog.String("role", a.Role))
}

// MinKeyLen is the shortest client key accepted.
const MinKeyLen = 16

// Load reads, expands, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load on bytes, with lookup resolving ${NAME}.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	return ParseWith(data, lookup, nil)
}

// ParseCredential reads one credential in the file's own shape (the
// fields of an item of credentials:), with lookup resolving ${NAME}: what
// `wxtoken admin add` sends. It is not validated: the server does that.
func ParseCredential(data []byte, lookup func(string) (string, bool)) (Credential, error) {
	var cr Credential
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cr, err
	}
	if err := expand(&root, lookup); err != nil {
		return cr, err
	}
	if errs := unknownFields(&root, reflect.TypeFor[Credential](), ""); len(errs) > 0 {
		return cr, errors.Join(errs...)
	}
	if err := root.Decode(&cr); err != nil {
		return cr, err
	}
	return cr, nil
}

// ParseWith is Parse against the kinds ks instead of the installed ones
// (nil: the installed ones).
func ParseWith(data []byte, lookup func(string) (string, bool), ks Kinds) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if err := expand(&root, lookup); err != nil {
		return nil, err
	}
	if errs := unknownFields(&root, reflect.TypeFor[Config](), ""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, err
	}
	c := Config{kindSet: ks}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		return nil, err
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var ref = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${NAME} in every scalar value. An unset variable is an
// error, not an empty secret.
func expand(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		var missing []string
		n.Value = ref.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return fmt.Errorf("line %d: environment variable %s is not set", n.Line, strings.Join(missing, ", "))
		}
		n.Tag, n.Style = "", 0 // re-resolve after expansion, e.g. ${PORT} as a number
	}
	for _, c := range n.Content {
		if err := expand(c, lookup); err != nil {
			return err
		}
	}
	return nil
}
