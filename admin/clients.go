package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

// clientView is a client as the admin API shows it: never its key, nor
// the key's hash.
type clientView struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"` // file or admin
	Allow    []string `json:"allow"`
	Import   []string `json:"import,omitempty"`
	SDK      string   `json:"sdk,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
	// PreviousKeyUntil lists when each rotated-out key stops working.
	PreviousKeyUntil []time.Time `json:"previous_key_until,omitempty"`
	Updated          *time.Time  `json:"updated,omitempty"`
	By               string      `json:"by,omitempty"`
	// Key is the client's new key, shown once: when the client is added
	// with no key given, and when its key is rotated.
	Key string `json:"key,omitempty"`
}

// clientInput is the body of POST and PUT /v1/admin/clients.
type clientInput struct {
	Name string `json:"name"`
	// Key is optional: without one, a key is made and answered once.
	Key    string   `json:"key"`
	Allow  []string `json:"allow"`
	Import []string `json:"import"`
	SDK    string   `json:"sdk"`
}

func (a *Admin) viewClient(sc *storedClient, now time.Time) clientView {
	v := clientView{Name: sc.Name, Source: "admin", Allow: sc.Allow, Import: sc.Import, SDK: sc.SDK, Disabled: sc.Disabled,
		Updated: stamp(sc.Updated), By: sc.By}
	for _, p := range sc.Previous {
		if p.Until.After(now) {
			v.PreviousKeyUntil = append(v.PreviousKeyUntil, p.Until.UTC())
		}
	}
	return v
}

func (a *Admin) listClients(ctx context.Context, _ *http.Request, _ *actor) (int, any, error) {
	stored, err := a.loadClients(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := []clientView{}
	for _, c := range a.cfg.File.Clients {
		out = append(out, clientView{Name: c.Name, Source: "file", Allow: c.Allow, Import: c.Import, SDK: c.SDK})
	}
	now := a.now()
	for name, sc := range stored {
		if !a.fileClients[name] {
			out = append(out, a.viewClient(sc, now))
		}
	}
	slices.SortFunc(out, func(x, y clientView) int { return strings.Compare(x.Name, y.Name) })
	return http.StatusOK, map[string]any{"clients": out}, nil
}

// newKey makes a client key: 32 random bytes, URL-safe base64.
func newKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkClient validates a client against the credentials known now and
// the keys in use (stored clients other than itself, the file's clients,
// admin keys).
func (a *Admin) checkClient(ctx context.Context, in clientInput, self string) error {
	ids := map[string]bool{}
	for _, id := range a.cfg.Tokens.IDs() {
		if snap, err := a.cfg.Tokens.Snapshot(id); err == nil && snap.Owner == "" {
			ids[id] = true
		}
	}
	stored, err := a.loadCredentials(ctx)
	if err != nil {
		return err
	}
	for id := range stored {
		ids[id] = true
	}
	components := map[string]bool{}
	for id, cr := range a.fileCreds {
		if cr.Kind == "component" {
			components[id] = true
		}
	}
	key := in.Key
	if key == "" {
		key = strings.Repeat("k", config.MinKeyLen) // checked apart: a made key is always good
	}
	cl := config.Client{Name: in.Name, Key: key, Allow: in.Allow, Import: in.Import, SDK: in.SDK}
	if err := config.ValidateClient(cl, ids, components); err != nil {
		return errorf(http.StatusBadRequest, "bad_request", err.Error())
	}
	if in.Key == "" {
		return nil
	}
	h := cl.KeyHash()
	if _, isAdmin := a.admins[h]; isAdmin {
		return errorf(http.StatusBadRequest, "bad_request", "key: an admin key cannot be a client key")
	}
	for _, c := range a.cfg.File.Clients {
		if c.KeyHash() == h {
			return errorf(http.StatusBadRequest, "bad_request", "key: another client has this key")
		}
	}
	others, err := a.loadClients(ctx)
	if err != nil {
		return err
	}
	for name, sc := range others {
		if name != self && unhex(sc.KeyHash) == h {
			return errorf(http.StatusBadRequest, "bad_request", "key: another client has this key")
		}
	}
	return nil
}

func (a *Admin) addClient(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	var in clientInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	info(ctx).target = in.Name
	if a.fileClients[in.Name] {
		return 0, nil, errorf(http.StatusConflict, "conflict", "client "+in.Name+" is in the configuration file, which wins: change it there")
	}
	if err := a.checkClient(ctx, in, in.Name); err != nil {
		return 0, nil, err
	}
	key, made := in.Key, in.Key == ""
	if made {
		key = newKey()
	}
	now := a.now()
	var v clientView
	err := modify(ctx, a.cfg.Store, clientPrefix+in.Name, func(sc *storedClient, exists bool) error {
		if exists {
			return errorf(http.StatusConflict, "conflict", "client "+in.Name+" exists: change it with PUT")
		}
		*sc = storedClient{Name: in.Name, KeyHash: hashHex(key), Allow: in.Allow, Import: in.Import, SDK: in.SDK,
			Created: now, Updated: now, By: who.Name}
		v = a.viewClient(sc, now)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	if err := a.sync(ctx); err != nil {
		return 0, nil, err
	}
	if made {
		v.Key = key
	}
	return http.StatusCreated, v, nil
}

func (a *Admin) updateClient(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	name := r.PathValue("name")
	var in clientInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Name != "" && in.Name != name {
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "name: the body names "+in.Name+", the path "+name+"; a name cannot change")
	}
	if in.Key != "" {
		return 0, nil, errorf(http.StatusBadRequest, "bad_request", "key: change a key with POST /v1/admin/clients/"+name+"/rotate")
	}
	if a.fileClients[name] {
		return 0, nil, errorf(http.StatusConflict, "conflict", "client "+name+" is in the configuration file, which wins: change it there")
	}
	in.Name = name
	if err := a.checkClient(ctx, in, name); err != nil {
		return 0, nil, err
	}
	now := a.now()
	var v clientView
	err := modify(ctx, a.cfg.Store, clientPrefix+name, func(sc *storedClient, exists bool) error {
		if !exists {
			return errNoClient
		}
		sc.Allow, sc.Import, sc.SDK, sc.Updated, sc.By = in.Allow, in.Import, in.SDK, now, who.Name
		v = a.viewClient(sc, now)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, a.sync(ctx)
}

var errNoClient = errorf(http.StatusNotFound, "not_found", "unknown client")

func (a *Admin) removeClient(ctx context.Context, r *http.Request, _ *actor) (int, any, error) {
	name := r.PathValue("name")
	if a.fileClients[name] {
		return 0, nil, errorf(http.StatusConflict, "conflict", "client "+name+" is in the configuration file, which wins: remove it there")
	}
	err := modify(ctx, a.cfg.Store, clientPrefix+name, func(_ *storedClient, exists bool) error {
		if !exists {
			return errNoClient
		}
		return errDelete
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"removed": name}, a.sync(ctx)
}

// rotateInput is the optional body of a rotation.
type rotateInput struct {
	// Grace is how long the old key keeps working ("24h" by default; "0s"
	// ends it at once, for a key that leaked).
	Grace string `json:"grace"`
}

func (a *Admin) rotateClient(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	name := r.PathValue("name")
	var in rotateInput
	if err := decodeOptional(r, &in); err != nil {
		return 0, nil, err
	}
	grace := a.cfg.KeyGrace
	if in.Grace != "" {
		d, err := time.ParseDuration(in.Grace)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			return 0, nil, errorf(http.StatusBadRequest, "bad_request", "grace: want a duration from 0s to 720h, got \""+in.Grace+"\"")
		}
		grace = d
	}
	if a.fileClients[name] {
		return 0, nil, errorf(http.StatusConflict, "conflict", "client "+name+" is in the configuration file, which wins: change its key there")
	}
	key := newKey()
	now := a.now()
	var v clientView
	err := modify(ctx, a.cfg.Store, clientPrefix+name, func(sc *storedClient, exists bool) error {
		if !exists {
			return errNoClient
		}
		var keep []previousKey
		for _, p := range sc.Previous {
			if p.Until.After(now) {
				keep = append(keep, p)
			}
		}
		if grace > 0 {
			keep = append(keep, previousKey{KeyHash: sc.KeyHash, Until: now.Add(grace)})
		}
		sc.Previous, sc.KeyHash, sc.Updated, sc.By = keep, hashHex(key), now, who.Name
		v = a.viewClient(sc, now)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	info(ctx).detail = "old key valid for " + grace.String()
	if err := a.sync(ctx); err != nil {
		return 0, nil, err
	}
	v.Key = key
	return http.StatusOK, v, nil
}

func (a *Admin) setClientDisabled(disabled bool) func(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
	return func(ctx context.Context, r *http.Request, who *actor) (int, any, error) {
		name := r.PathValue("name")
		if a.fileClients[name] {
			return 0, nil, errorf(http.StatusConflict, "conflict", "client "+name+" is in the configuration file, which wins: change it there")
		}
		now := a.now()
		var v clientView
		err := modify(ctx, a.cfg.Store, clientPrefix+name, func(sc *storedClient, exists bool) error {
			if !exists {
				return errNoClient
			}
			sc.Disabled, sc.Updated, sc.By = disabled, now, who.Name
			v = a.viewClient(sc, now)
			return nil
		})
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, v, a.sync(ctx)
	}
}
