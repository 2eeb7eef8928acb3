package redis

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
)

// awaitReset reads ch until it delivers "", the sign that the watcher
// must re-read everything.
func awaitReset(t *testing.T, ch <-chan string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case k, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed during the outage")
			}
			if k == "" {
				return
			}
		case <-timeout:
			t.Fatal(`no "" within 30s of the restart`)
		}
	}
}

// awaitKey reads ch until it delivers want.
func awaitKey(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case k, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if k == want {
				return
			}
		case <-timeout:
			t.Fatalf("no notification of %q within 10s", want)
		}
	}
}

// TestWatchAfterRestart shows a watcher living through a restart of
// Redis: it is told that it may have missed changes, then sees new ones,
// without reopening anything.
func TestWatchAfterRestart(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	p := freshPrefix()
	a, b := open(t, srv, p), open(t, srv, p)
	ctx := t.Context()
	ch, err := b.Watch(ctx, "tok/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "tok/before", nil, 0); err != nil {
		t.Fatal(err)
	}
	awaitKey(t, ch, "tok/before")

	srv.Restart()
	awaitReset(t, ch)

	if _, err := a.Put(ctx, "tok/after", nil, 0); err != nil {
		t.Fatalf("Put after the restart: %v", err)
	}
	awaitKey(t, ch, "tok/after")
	if e, err := b.Get(ctx, "tok/before"); err != nil || e.Version != 1 {
		t.Fatalf("Get(tok/before) after a clean restart = v%d, %v; want v1", e.Version, err)
	}
}

// TestDataSurvivesKill kills Redis as a crash would: with appendfsync
// always, every write that returned is in the append-only file.
func TestDataSurvivesKill(t *testing.T) {
	srv := redistest.New(t, redistest.Options{Args: []string{"--appendfsync", "always"}})
	s := open(t, srv, freshPrefix())
	ctx := t.Context()
	v, err := s.Put(ctx, "ticket", []byte("one"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = s.Put(ctx, "ticket", []byte("two"), v); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	srv.Start()

	e, err := s.Get(ctx, "ticket")
	if err != nil || string(e.Value) != "two" || e.Version != v {
		t.Fatalf("after kill -9 and start Get = %q v%d, %v; want \"two\" v%d", e.Value, e.Version, err, v)
	}
	if _, err := s.Put(ctx, "ticket", []byte("three"), v); err != nil {
		t.Fatalf("Put over the surviving version: %v", err)
	}
}

// TestFailFastWhileDown checks that every call returns an error within
// its deadline while Redis is down, and that the same Store works again
// once Redis is back.
func TestFailFastWhileDown(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	p := freshPrefix()
	s := open(t, srv, p)
	unwatched := open(t, srv, p) // its first Watch must reach Redis
	ctx := t.Context()
	v, err := s.Put(ctx, "k", []byte("x"), 0)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.Lock(ctx, "held", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	const deadline = 2 * time.Second
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Put", func(ctx context.Context) error { _, err := s.Put(ctx, "k", []byte("y"), v); return err }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "k", v) }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, ""); return err }},
		{"Lock", func(ctx context.Context) error { _, err := s.Lock(ctx, "other", time.Minute); return err }},
		{"Extend", func(ctx context.Context) error { return held.Extend(ctx, time.Minute) }},
		{"Unlock", func(ctx context.Context) error { return held.Unlock(ctx) }},
		{"Watch", func(ctx context.Context) error { _, err := unwatched.Watch(ctx, ""); return err }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		err := c.call(ctx)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Errorf("%s while Redis is down succeeded", c.name)
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrLockLost) {
			t.Errorf("%s while Redis is down error = %v, want a connection error, not an answer", c.name, err)
		}
		if took > deadline+250*time.Millisecond {
			t.Errorf("%s while Redis is down took %v, past its %v deadline", c.name, took, deadline)
		}
	}

	// A long outage: enough failed dials to make the client stop dialing
	// and fail at once, probing in the background instead.
	for range 10*runtime.GOMAXPROCS(0) + 1 {
		if _, err := s.Get(ctx, "k"); err == nil {
			t.Fatal("Get while Redis is down succeeded")
		}
	}

	srv.Start()
	// The client's probe notices within about a second.
	start := time.Now()
	for {
		e, err := s.Get(ctx, "k")
		if err == nil && e.Version == v {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Get 5s after Redis is back = v%d, %v; want v%d", e.Version, err, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("calls succeeded again %v after Redis was back", time.Since(start).Round(time.Millisecond))
	if _, err := s.Put(ctx, "k", []byte("y"), v); err != nil {
		t.Fatalf("Put after Redis is back: %v", err)
	}
	l, err := s.Lock(ctx, "other", time.Minute)
	if err != nil {
		t.Fatalf("Lock after Redis is back: %v", err)
	}
	l.Unlock(ctx)
	if err := held.Extend(ctx, time.Minute); err != nil {
		t.Fatalf("Extend of a lease that survived the outage: %v", err)
	}
	if _, err := unwatched.Watch(ctx, ""); err != nil {
		t.Fatalf("Watch after Redis is back: %v", err)
	}
}

// TestDeadlineWhileHung freezes Redis, as a hung host or a partition
// would, so that nothing refuses a connection and nothing answers: every
// call must still return by its deadline, as context.DeadlineExceeded.
func TestDeadlineWhileHung(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	s := open(t, srv, freshPrefix())
	ctx := t.Context()
	v, err := s.Put(ctx, "k", []byte("x"), 0)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.Lock(ctx, "held", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	const deadline = 300 * time.Millisecond
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err }},
		{"Put", func(ctx context.Context) error { _, err := s.Put(ctx, "k", []byte("y"), v); return err }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, ""); return err }},
		{"Lock", func(ctx context.Context) error { _, err := s.Lock(ctx, "other", time.Minute); return err }},
		{"Extend", func(ctx context.Context) error { return held.Extend(ctx, time.Minute) }},
		{"Watch", func(ctx context.Context) error { _, err := s.Watch(ctx, ""); return err }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		err := c.call(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while Redis hangs error = %v, want context.DeadlineExceeded", c.name, err)
		}
		if took > deadline+500*time.Millisecond {
			t.Errorf("%s while Redis hangs took %v, past its %v deadline", c.name, took, deadline)
		}
	}

	srv.Resume()
	if e, err := s.Get(ctx, "k"); err != nil || e.Version != v {
		t.Fatalf("Get after Redis resumes = v%d, %v; want v%d", e.Version, err, v)
	}
}

// TestWatchDetectsHang freezes Redis under a watcher: the subscription's
// connection stays open but silent, which only the health check's
// unanswered ping reveals. Once Redis answers again the watcher gets "",
// then new writes.
func TestWatchDetectsHang(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	p := freshPrefix()
	a, b := open(t, srv, p), open(t, srv, p)
	b.health = feedHealth{idle: 100 * time.Millisecond, ping: 100 * time.Millisecond}
	ctx := t.Context()
	ch, err := b.Watch(ctx, "tok/")
	if err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	time.Sleep(time.Second) // several health checks fail meanwhile
	srv.Resume()

	awaitReset(t, ch)
	if _, err := a.Put(ctx, "tok/after", nil, 0); err != nil {
		t.Fatal(err)
	}
	awaitKey(t, ch, "tok/after")
}
