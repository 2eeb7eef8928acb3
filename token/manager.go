package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/store"
)

// Config configures a Manager. Zero values mean the defaults documented on
// each field.
type Config struct {
	// Store keeps records and provides the per-credential lease. Required.
	Store store.Store
	// Logger receives one line per refresh; nil means slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told of every refresh and report (metrics).
	Observer Observer

	// RefreshAt is the fraction of a token's lifetime after which it is
	// refreshed (default 0.8); Jitter spreads that by ± this fraction of
	// the lifetime (default 0.05): 7200 s tokens are refreshed 5400 s to
	// 6120 s after issue, 18 to 30 minutes before they expire.
	RefreshAt, Jitter float64
	// Overlap is how long WeChat keeps a replaced token valid (default
	// 5m). It bounds how long callers may cache a token that our next
	// planned refresh will replace.
	Overlap time.Duration
	// MinForceInterval is the least time between a fetch and a refresh
	// that a caller's report forces (default 30s).
	MinForceInterval time.Duration
	// ServeWait is how long Await waits for a fetch that is due or under
	// way when there is no valid token (default 2s).
	ServeWait time.Duration
	// ForceBudget is how many upstream calls a credential may have made
	// today (Beijing day) before callers' reports stop forcing refreshes
	// (default 1000, half of WeChat's classic daily quota): a misbehaving
	// caller cannot spend the quota planned refreshes need.
	ForceBudget int
	// BaseBackoff and MaxBackoff bound retries of transient failures
	// (defaults 1s and 5m).
	BaseBackoff, MaxBackoff time.Duration
	// ConfigRetry is how long a credential whose configuration WeChat
	// refused waits before trying again on its own (default 1h). A changed
	// configuration retries at once.
	ConfigRetry time.Duration
	// TicketRetry is how often a credential waiting for a pushed ticket
	// tries again on its own (default 1m); a ticket's arrival wakes it.
	TicketRetry time.Duration
	// FetchTimeout bounds one upstream call (default 15s).
	FetchTimeout time.Duration
	// LockTTL is the per-credential lease (default 1m); it must exceed
	// FetchTimeout, as a refresh holds the lease through one or two calls.
	LockTTL time.Duration
	// Resync is how often every record is re-read from the store, in case
	// a change notification was lost (default 1m).
	Resync time.Duration
	// Concurrency bounds simultaneous upstream fetches (default 16).
	Concurrency int
	// Rand is the source of jitter; nil means a randomly seeded one.
	Rand rand.Source
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	if c.RefreshAt <= 0 {
		c.RefreshAt = 0.8
	}
	if c.Jitter <= 0 {
		c.Jitter = 0.05
	}
	def(&c.Overlap, 5*time.Minute)
	def(&c.MinForceInterval, 30*time.Second)
	def(&c.ServeWait, 2*time.Second)
	if c.ForceBudget <= 0 {
		c.ForceBudget = 1000
	}
	def(&c.BaseBackoff, time.Second)
	def(&c.MaxBackoff, 5*time.Minute)
	def(&c.ConfigRetry, time.Hour)
	def(&c.TicketRetry, time.Minute)
	def(&c.FetchTimeout, 15*time.Second)
	def(&c.LockTTL, time.Minute)
	def(&c.Resync, time.Minute)
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Rand == nil {
		c.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("token: Config.Store is required")
	case c.RefreshAt-c.Jitter <= 0 || c.RefreshAt+c.Jitter >= 1:
		return fmt.Errorf("token: RefreshAt±Jitter must stay inside (0, 1), got %v±%v", c.RefreshAt, c.Jitter)
	case c.LockTTL <= c.FetchTimeout:
		return fmt.Errorf("token: LockTTL (%s) must exceed FetchTimeout (%s)", c.LockTTL, c.FetchTimeout)
	}
	return nil
}

// Manager keeps credentials' tokens fresh. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg  Config
	plan *planner
	log  *slog.Logger
	sem  chan struct{} // bounds upstream fetches

	entries sync.Map // id → *entry
	owners  owners
	ids     idList // IDs' sorted list
	// kinsMu guards kids, the entries derived from each entry that has
	// any: few have, so they are not a field of every entry.
	kinsMu sync.Mutex
	kids   map[*entry][]*entry
	wake   wakeups  // planned refreshes, by time
	dueq   dueQueue // planned refreshes that are due
	// bulk serializes the passes that read every record: Restore and
	// resyncAll.
	bulk sync.Mutex

	// onChange are called with every snapshot a watcher should hear of
	// (OnChange); the slice is replaced, never changed.
	onChange   atomic.Pointer[[]func(*Snapshot)]
	onChangeMu sync.Mutex

	ctx    context.Context // cancelled by Close: ends refreshes
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	wg     sync.WaitGroup
}

// entry is one credential's state. snap is what the request path reads;
// everything else is guarded by mu. A platform may hold 100,000 entries:
// what few of them use (children, a channel to wait on) is held elsewhere
// or made when needed, and the next planned refresh is snap.NextRefresh.
type entry struct {
	cred Credential
	snap atomic.Pointer[Snapshot]

	mu     sync.Mutex
	rec    held   // last record read or written
	ver    uint64 // its store version
	flight *flight
	// changed, once Await has made it, is closed, and dropped, whenever
	// snap is replaced.
	changed chan struct{}
	// parent is the entry of cred.Parent, set when e is added.
	parent *entry
	// wakeAt is when the planned refresh is due (Unix nanoseconds), and
	// wakeIdx e's place in the heap of planned refreshes (-1: none);
	// both guarded by the heap's lock, not mu.
	wakeAt  int64
	wakeIdx int32
	// storeFailures counts consecutive store errors, which are never
	// persisted (the store is what failed).
	storeFailures int32
	// unsaved: rec holds a fetch the store did not take.
	unsaved bool
	// woken: what the credential waited for has arrived here (a pushed
	// ticket), so its next attempt need not wait out the shared retry
	// time.
	woken bool
	// awaitsParent: the last fetch could not use the parent's token (it
	// had none, or WeChat refused it); the parent's next token wakes this
	// credential. wakeAfterFlight: that token, or a pushed ticket (Wake),
	// arrived while a flight was running, which re-plans at once when it
	// ends.
	awaitsParent, wakeAfterFlight bool
	// queued: its planned refresh is in the due queue. Guarded by the
	// queue's lock, not mu.
	queued bool
	// removed: Remove took the credential out; nothing re-plans it.
	removed bool
}

// newEntry returns the entry of a credential not loaded yet.
func newEntry(c Credential) *entry {
	e := &entry{cred: c, wakeIdx: -1}
	e.snap.Store(&Snapshot{ID: c.ID, Kind: c.Kind, Owner: c.Owner})
	return e
}

// New returns a Manager for creds. It does not touch the store or WeChat
// until Start.
func New(cfg Config, creds []Credential) (*Manager, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg,
		log: cfg.Logger,
		sem: make(chan struct{}, cfg.Concurrency),
		plan: &planner{
			at: cfg.RefreshAt, jitter: cfg.Jitter,
			baseBackoff: cfg.BaseBackoff, maxBackoff: cfg.MaxBackoff,
			rand: rand.New(cfg.Rand),
		},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for _, c := range creds {
		if err := m.add(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Manager) add(c Credential) error {
	if c.ID == "" || c.Source == nil {
		return errors.New("token: a credential needs an ID and a Source")
	}
	e := newEntry(c)
	if _, dup := m.entries.LoadOrStore(c.ID, e); dup {
		return fmt.Errorf("token: duplicate credential id %q", c.ID)
	}
	m.ids.changed()
	m.addChild(e)
	for _, k := range c.Children {
		k.Parent = c.ID
		if err := m.add(k); err != nil {
			return err
		}
	}
	return nil
}

// Start loads every credential's stored record, so tokens that are still
// valid are served at once without a fetch, plans each refresh, and starts
// following the store for peers' refreshes. It returns after the records
// are loaded; fetches happen in the background.
func (m *Manager) Start(ctx context.Context) error {
	if m.enter() {
		go m.follow()
	}
	var errs []error
	m.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		rec, ver, err := m.load(ctx, e.cred.ID)
		e.mu.Lock()
		if err != nil {
			e.storeFailures++
			errs = append(errs, err)
			m.settle(e, e.rec.record(), e.ver, time.Now().Add(m.cfg.BaseBackoff), m.storeCause(e, err))
		} else {
			m.settle(e, rec, ver, m.loaded(e, rec, time.Now()), nil)
		}
		e.mu.Unlock()
		return true
	})
	return errors.Join(errs...)
}

// planned is when a record's credential should next be refreshed. A
// fetch another instance has under way (rec.Fetching) is given the time
// its call may take before anyone looks again; a record loaded at start
// goes through loaded, which does not wait for a fetch that died with
// its process.
func (m *Manager) planned(e *entry, rec record, now time.Time) time.Time {
	switch {
	case rec.BlockedUntil.After(now) && rec.Fingerprint == e.cred.Fingerprint:
		return rec.BlockedUntil
	case rec.RetryAt.After(now):
		return rec.RetryAt
	case rec.Token == "" || !rec.ExpiresAt.After(now) || rec.Reported:
		return now
	case !rec.Fetching.IsZero():
		return maxTime(now, rec.Fetching.Add(m.cfg.FetchTimeout))
	}
	return rec.RefreshAt
}

// loaded is planned for a record read at start: an unfinished fetch is
// taken up at once. If a peer's fetch is in fact still running, the
// refresh waits for its lease and then adopts what it stored.
func (m *Manager) loaded(e *entry, rec record, now time.Time) time.Time {
	if !rec.Fetching.IsZero() && !(rec.BlockedUntil.After(now) && rec.Fingerprint == e.cred.Fingerprint) {
		return now
	}
	return m.planned(e, rec, now)
}

// Close stops the planned refreshes and every refresh under way, and
// waits for them to end.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// enter registers a goroutine with the Manager unless it is closed; the
// caller must call m.wg.Done when enter returns true.
func (m *Manager) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	return true
}

// entry returns the entry of the credential whose id is id.
func (m *Manager) entry(id string) (*entry, error) {
	v, ok := m.entries.Load(id)
	if !ok {
		return nil, ErrUnknown
	}
	return v.(*entry), nil
}

// lookup is entry for a caller's id, which may also be the id of a
// credential within its owner's namespace: "{owner}/{id}". An authorizer
// is held as "{platform}/{appid}", and answers to its bare appid (its id
// before ids had namespaces) while only one platform holds it; so do the
// credentials derived from it ("{appid}/tickets/jsapi").
func (m *Manager) lookup(id string) (*entry, error) {
	if v, ok := m.entries.Load(id); ok {
		return v.(*entry), nil
	}
	var found []*entry
	for _, owner := range m.owners.list() {
		if v, ok := m.entries.Load(owner + "/" + id); ok {
			found = append(found, v.(*entry))
		}
	}
	switch len(found) {
	case 0:
		return nil, ErrUnknown
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, e := range found {
		ids[i] = e.cred.ID
	}
	return nil, &AmbiguousError{ID: id, Candidates: ids}
}

// Token returns the credential's current token. It never waits on WeChat
// or the store: it reads memory only. A credential with no token valid
// for at least the safety margin gives an *UnavailableError.
func (m *Manager) Token(id string) (*Snapshot, error) {
	e, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	s := e.snap.Load()
	if !s.Valid(time.Now()) {
		if s.Revoked {
			return nil, ErrRevoked
		}
		return nil, &UnavailableError{ID: e.cred.ID, Cause: s.Cause}
	}
	return s, nil
}

// Await is Token for a request that may wait a little: with no valid
// token while a fetch is under way or due within ServeWait, it waits for
// that fetch, up to ServeWait, rather than fail at once. A WeCom token can
// be replaced only once it has expired, so for a moment at every rollover
// there is none to hand out. With a valid token it never waits.
func (m *Manager) Await(ctx context.Context, id string) (*Snapshot, error) {
	s, err := m.Token(id)
	if err == nil || errors.Is(err, ErrUnknown) || errors.Is(err, ErrRevoked) {
		return s, err
	}
	e, _ := m.lookup(id)
	deadline := time.Now().Add(m.cfg.ServeWait)
	timer := time.NewTimer(m.cfg.ServeWait)
	defer timer.Stop()
	for {
		e.mu.Lock()
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		changed, due, parent := e.changed, e.flight != nil || !e.snap.Load().NextRefresh.After(deadline), e.awaitsParent
		e.mu.Unlock()
		if c := e.snap.Load().Cause; c != nil && c.Class == causeParent {
			parent = true // here, or at the peer whose failure was adopted
		}
		// A child waiting for its parent's next token is fetched as soon
		// as the parent has it, here or at a peer, not at its retry
		// time: wait for that.
		due = due || parent
		if !due {
			return nil, err
		}
		select {
		case <-changed:
		case <-timer.C:
			return m.Token(id)
		case <-ctx.Done():
			return nil, err
		}
		if s, err = m.Token(id); err == nil || errors.Is(err, ErrRevoked) {
			return s, err
		}
	}
}

// OnChange sets fn to be called with a credential's new snapshot whenever
// its token is replaced, its authorization is withdrawn or given back, or
// the moment its token may be served until comes earlier: whenever what a
// caller caches must change. fn runs with the credential locked, on the
// path that published the snapshot: it must be quick, must not block and
// must not call the Manager. Each call adds a function.
func (m *Manager) OnChange(fn func(*Snapshot)) {
	m.onChangeMu.Lock()
	defer m.onChangeMu.Unlock()
	var fns []func(*Snapshot)
	if p := m.onChange.Load(); p != nil {
		fns = slices.Clone(*p)
	}
	fns = append(fns, fn)
	m.onChange.Store(&fns)
}

// Snapshot returns the credential's current state, valid token or not.
func (m *Manager) Snapshot(id string) (*Snapshot, error) {
	e, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return e.snap.Load(), nil
}

// IDs lists the credentials, sorted.
func (m *Manager) IDs() []string {
	return m.ids.list(m)
}

// Ready reports whether this instance can serve: every credential has a
// valid token or a known cause that another instance could not fix either
// (a refused configuration, a spent quota, an upstream outage). A
// credential still waiting for its first token, or one whose store is
// failing, makes the instance not ready.
func (m *Manager) Ready() bool {
	now := time.Now()
	ready := true
	m.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		s := e.snap.Load()
		if !s.Valid(now) && !s.Revoked && (s.Cause == nil || s.Cause.Class == causeStore || waitsForValidParent(e, s, now)) {
			ready = false
		}
		return ready
	})
	return ready
}

// waitsForValidParent reports a child whose last attempt found its parent
// without a token, though the parent has one now: it is about to be
// fetched, not failing for a cause that another instance shares.
func waitsForValidParent(e *entry, s *Snapshot, now time.Time) bool {
	if s.Cause.Class != causeParent {
		return false
	}
	e.mu.Lock()
	p := e.parent
	e.mu.Unlock()
	return p != nil && p.snap.Load().Valid(now)
}

// Refresh forces a refresh of the credential now unless its current token
// has already been replaced (Invalidate with the current token).
func (m *Manager) Refresh(ctx context.Context, id string) (*Snapshot, error) {
	e, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	s, _, err := m.refresh(ctx, e, e.snap.Load().Token, forced)
	return s, err
}

// Invalidate is Report without the result.
func (m *Manager) Invalidate(ctx context.Context, id, stale string) (*Snapshot, error) {
	s, _, err := m.Report(ctx, id, stale)
	return s, err
}

// Report is a caller's report that stale failed upstream (40001, 40014,
// 42001). If stale has been replaced already, the current token is
// returned without touching WeChat (Replaced). If it is still current and
// its source can check it, WeChat is asked once whether it works: a live
// token is returned as it is (Live); a dead one is refreshed at once
// (Refreshed). A token that could not be checked is refreshed subject to
// MinForceInterval and, in stable mode, WeChat's force limits. Whatever
// the checks say, ForceBudget bounds the fetches reports cause in a day,
// and one check and one fetch serve every caller reporting together.
func (m *Manager) Report(ctx context.Context, id, stale string) (*Snapshot, Result, error) {
	e, err := m.lookup(id)
	if err != nil {
		return nil, 0, err
	}
	if e.snap.Load().Revoked {
		return nil, 0, ErrRevoked
	}
	s, res, err := m.refresh(ctx, e, stale, reported)
	if obs := m.cfg.Observer; obs != nil {
		if err != nil {
			obs.Reported(e.cred.Kind, "refused")
		} else {
			obs.Reported(e.cred.Kind, res.String())
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if !s.Valid(time.Now()) {
		return nil, 0, &UnavailableError{ID: e.cred.ID, Cause: s.Cause}
	}
	return s, res, nil
}
