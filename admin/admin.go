package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/facade"
	"github.com/wxtoken/wxtoken/server"
	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/token"
	"github.com/wxtoken/wxtoken/wechat"
)

// Tokens is what the admin API needs of the token manager.
type Tokens interface {
	IDs() []string
	Snapshot(id string) (*token.Snapshot, error)
	Refresh(ctx context.Context, id string) (*token.Snapshot, error)
	Unblock(ctx context.Context, id string) (*token.Snapshot, error)
	Add(ctx context.Context, c token.Credential, seed *token.Seed) error
	Remove(id string) error
}

// Config configures an Admin.
type Config struct {
	Store  store.Store
	Tokens Tokens
	// Build makes the token credential of a credential added at run time,
	// and its JS-SDK (nil without tickets): cmd/wxtoken builds it with
	// package kind, as it does the file's.
	Build func(cr config.Credential) (Built, error)
	// ClearQuota asks WeChat to reset the account's daily quota
	// (cgi-bin/clear_quota/v2); nil if unsupported.
	ClearQuota func(ctx context.Context, cr config.Credential) error
	// File is the configuration file: its credentials and clients always
	// win over stored ones, and its admins are the only admin keys.
	File *config.Config
	// SetClients installs the clients in force: the file's and the stored
	// ones, on the API and the facade.
	SetClients func([]Client)
	// SetCredentials, if set, is told the credentials added at run time
	// that are running, after every change (for the facade).
	SetCredentials func([]Built)
	Logger         *slog.Logger
	// Resync is how often every stored record is re-read, in case a
	// change notification was lost (default 30s).
	Resync time.Duration
	// KeyGrace is how long a rotated client key keeps working unless the
	// rotation says otherwise (default 24h).
	KeyGrace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Platforms are the file's third-party platforms, by credential id,
	// listed with their authorizers at GET /v1/admin/platforms.
	Platforms map[string]Platform
	// Upstreams reports WeChat's hosts and their health
	// (wechat.Client.Upstreams); nil lists none.
	Upstreams func() []wechat.UpstreamStatus
	// DeadLetters are the message gateway's; nil when no callback
	// forwards messages.
	DeadLetters DeadLetters
}

// Built is a credential added at run time, built.
type Built struct {
	Credential token.Credential
	JSSDK      *server.JSSDK
	// Facade is how the WeChat-compatible facade names it, if it does.
	Facade []facade.Credential
}

// Client is a client in force: the file's, or one stored.
type Client struct {
	Name    string
	KeyHash [32]byte
	Allow   []string
	Import  []string
	SDK     string
	// Until, if set, ends a rotated-out key's grace.
	Until time.Time
}

// Admin applies stored credentials and clients and serves the admin API.
type Admin struct {
	cfg    Config
	log    *slog.Logger
	audit  *auditLog
	admins map[[32]byte]*actor

	fileCreds   map[string]config.Credential
	fileClients map[string]bool

	// mu serializes sync passes and guards what they applied.
	mu      sync.Mutex
	applied map[string]string // id → fingerprint of the running settings
	jssdk   sync.Map          // id → *server.JSSDK of a running credential with tickets
	running map[string]Built  // id → the running credential
	failed  map[string]string // id → why it could not be applied
	shadow  map[string]bool   // stored ids the file also names, logged once

	stop context.CancelFunc
	done chan struct{}
}

// actor is an admin key's holder.
type actor struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

var roleRank = map[string]int{config.RoleViewer: 1, config.RoleOperator: 2, config.RoleAdmin: 3}

func (a *actor) may(role string) bool { return roleRank[a.Role] >= roleRank[role] }

// New returns an Admin; Start applies what is stored.
func New(cfg Config) (*Admin, error) {
	if cfg.Store == nil || cfg.Tokens == nil || cfg.Build == nil || cfg.File == nil || cfg.SetClients == nil {
		return nil, errors.New("admin: Store, Tokens, Build, File and SetClients are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.KeyGrace <= 0 {
		cfg.KeyGrace = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Admin{cfg: cfg, log: cfg.Logger, admins: map[[32]byte]*actor{},
		fileCreds: map[string]config.Credential{}, fileClients: map[string]bool{},
		applied: map[string]string{}, running: map[string]Built{}, failed: map[string]string{}, shadow: map[string]bool{}}
	a.audit = &auditLog{st: cfg.Store, now: cfg.Now}
	for _, ad := range cfg.File.Admins {
		a.admins[ad.KeyHash()] = &actor{Name: ad.Name, Role: ad.Role}
	}
	for _, cr := range cfg.File.Credentials {
		a.fileCreds[cr.ID] = cr
	}
	for _, cl := range cfg.File.Clients {
		a.fileClients[cl.Name] = true
	}
	return a, nil
}

// Start applies the stored credentials and clients, then follows the
// store's changes until Close.
func (a *Admin) Start(ctx context.Context) error {
	if err := a.sync(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	ch, err := a.cfg.Store.Watch(wctx, prefix)
	if err != nil {
		cancel()
		return err
	}
	a.stop, a.done = cancel, make(chan struct{})
	go a.follow(wctx, ch)
	return nil
}

// Close stops following the store.
func (a *Admin) Close() {
	if a.stop != nil {
		a.stop()
		<-a.done
	}
}

// follow re-applies the stored records when the store reports a change
// to one of them (an audit entry changes nothing to apply), and every
// Resync.
func (a *Admin) follow(ctx context.Context, ch <-chan string) {
	defer close(a.done)
	t := time.NewTicker(a.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case key, ok := <-ch:
			if !ok {
				return
			}
			if strings.HasPrefix(key, auditPrefix) || strings.HasPrefix(key, quotaPrefix) {
				continue
			}
		case <-t.C:
		}
		if err := a.sync(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("admin: applying stored credentials and clients failed; retrying", "err", err)
		}
	}
}

// sync applies every stored credential and client.
func (a *Admin) sync(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	creds, err := a.loadCredentials(ctx)
	if err != nil {
		return err
	}
	clients, err := a.loadClients(ctx)
	if err != nil {
		return err
	}
	want := map[string]*storedCredential{}
	for id, sc := range creds {
		if _, inFile := a.fileCreds[id]; inFile {
			if !a.shadow[id] {
				a.shadow[id] = true
				a.log.Warn("admin: a stored credential has the id of one in the configuration file; the file's is used", "id", id)
			}
			continue
		}
		if !sc.Disabled {
			want[id] = sc
		}
	}
	for id, fp := range a.applied {
		if sc, ok := want[id]; ok && sc.fingerprint() == fp {
			continue
		}
		if err := a.cfg.Tokens.Remove(id); err != nil && !errors.Is(err, token.ErrUnknown) {
			a.log.Warn("admin: stopping a credential failed", "id", id, "err", err)
		}
		delete(a.applied, id)
		delete(a.running, id)
		a.jssdk.Delete(id)
		a.log.Info("admin: credential stopped", "id", id)
	}
	for id, sc := range want {
		fp := sc.fingerprint()
		if a.applied[id] == fp {
			continue
		}
		b, err := a.cfg.Build(sc.Credential)
		if err == nil {
			err = a.cfg.Tokens.Add(ctx, b.Credential, nil)
		}
		if err != nil {
			if a.failed[id] != err.Error() {
				a.log.Error("admin: a stored credential cannot be used", "id", id, "err", err)
			}
			a.failed[id] = err.Error()
			continue
		}
		delete(a.failed, id)
		a.applied[id] = fp
		a.running[id] = b
		if b.JSSDK != nil {
			a.jssdk.Store(id, b.JSSDK)
		}
		a.log.Info("admin: credential started", "id", id, "kind", sc.Credential.Kind)
	}
	for id := range a.failed {
		if _, ok := want[id]; !ok {
			delete(a.failed, id)
		}
	}
	a.cfg.SetClients(a.clientList(clients))
	if a.cfg.SetCredentials != nil {
		ids := make([]string, 0, len(a.running))
		for id := range a.running {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		list := make([]Built, len(ids))
		for i, id := range ids {
			list[i] = a.running[id]
		}
		a.cfg.SetCredentials(list)
	}
	return nil
}

// clientList is the file's clients followed by the stored ones the file
// does not name, each rotated-out key as a client of its own until its
// grace ends.
func (a *Admin) clientList(stored map[string]*storedClient) []Client {
	var out []Client
	for _, c := range a.cfg.File.Clients {
		out = append(out, Client{Name: c.Name, KeyHash: c.KeyHash(), Allow: c.Allow, Import: c.Import, SDK: c.SDK})
	}
	names := make([]string, 0, len(stored))
	for n := range stored {
		names = append(names, n)
	}
	sort.Strings(names)
	now := a.cfg.Now()
	for _, n := range names {
		sc := stored[n]
		if sc.Disabled || a.fileClients[n] {
			continue
		}
		out = append(out, Client{Name: n, KeyHash: unhex(sc.KeyHash), Allow: sc.Allow, Import: sc.Import, SDK: sc.SDK})
		for _, p := range sc.Previous {
			if p.Until.After(now) {
				out = append(out, Client{Name: n, KeyHash: unhex(p.KeyHash), Allow: sc.Allow, Import: sc.Import, SDK: sc.SDK, Until: p.Until})
			}
		}
	}
	return out
}

func (a *Admin) loadCredentials(ctx context.Context) (map[string]*storedCredential, error) {
	kvs, err := a.cfg.Store.Load(ctx, credentialPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*storedCredential, len(kvs))
	for _, kv := range kvs {
		var sc storedCredential
		if err := json.Unmarshal(kv.Value, &sc); err != nil {
			a.log.Error("admin: an unreadable stored credential is skipped", "key", kv.Key, "err", err)
			continue
		}
		out[strings.TrimPrefix(kv.Key, credentialPrefix)] = &sc
	}
	return out, nil
}

func (a *Admin) loadClients(ctx context.Context) (map[string]*storedClient, error) {
	kvs, err := a.cfg.Store.Load(ctx, clientPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*storedClient, len(kvs))
	for _, kv := range kvs {
		var sc storedClient
		if err := json.Unmarshal(kv.Value, &sc); err != nil {
			a.log.Error("admin: an unreadable stored client is skipped", "key", kv.Key, "err", err)
			continue
		}
		out[strings.TrimPrefix(kv.Key, clientPrefix)] = &sc
	}
	return out, nil
}

// errBusy: a record changed between its read and its write, more times
// than a retry absorbs.
var errBusy = errors.New("changed concurrently; try again")

// modify reads the record at key, lets change edit it (exists says
// whether it was stored) and writes it back with compare-and-swap,
// retrying a few times when another writer came in between. change
// returning errDelete deletes the record.
func modify[T any](ctx context.Context, st store.Store, key string, change func(v *T, exists bool) error) error {
	for range 5 {
		var v T
		var ver uint64
		e, err := st.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value, &v); err != nil {
				return fmt.Errorf("stored %s is unreadable: %w", key, err)
			}
			ver = e.Version
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := change(&v, ver != 0); err != nil {
			if errors.Is(err, errDelete) {
				err = st.Delete(ctx, key, ver)
				if errors.Is(err, store.ErrConflict) {
					continue
				}
			}
			return err
		}
		b, err := json.Marshal(&v)
		if err != nil {
			return err
		}
		if _, err := st.Put(ctx, key, b, ver); errors.Is(err, store.ErrConflict) {
			continue
		} else {
			return err
		}
	}
	return errBusy
}

var errDelete = errors.New("delete")

// JSSDK returns the tickets and signing ids of a running credential added
// at run time, nil if it has none: the server's JS-SDK lookup asks it for
// what the file does not name.
func (a *Admin) JSSDK(id string) *server.JSSDK {
	if j, ok := a.jssdk.Load(id); ok {
		return j.(*server.JSSDK)
	}
	return nil
}
