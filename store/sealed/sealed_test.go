package sealed

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/wxtoken/wxtoken/store"
	"github.com/wxtoken/wxtoken/store/bolt"
	"github.com/wxtoken/wxtoken/store/memory"
	redisstore "github.com/wxtoken/wxtoken/store/redis"
	"github.com/wxtoken/wxtoken/store/redis/redistest"
	"github.com/wxtoken/wxtoken/store/storetest"
)

// ring makes a keyring of base64 keys, failing the test on error.
func ring(t testing.TB, primary string, others ...string) *Keyring {
	t.Helper()
	r, err := ParseKeyring(primary, strings.Join(others, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConformanceMemory(t *testing.T) {
	r := ring(t, NewKey())
	storetest.Run(t, func(t *testing.T) store.Store { return New(memory.New(), r) })
}

func TestConformanceBolt(t *testing.T) {
	r := ring(t, NewKey())
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return New(s, r)
	})
}

func TestConformanceRedis(t *testing.T) {
	srv := redistest.New(t, redistest.Options{})
	r := ring(t, NewKey())
	n := 0
	open := func(t *testing.T, prefix string) store.Store {
		s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{srv.Addr()}, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return New(s, r)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		return open(t, fmt.Sprintf("sealed%d:", n))
	})
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		n++
		p := fmt.Sprintf("sealed%d:", n)
		a, b := open(t, p), open(t, p)
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	})
}

// TestSealedAtRest: what the wrapped store holds is sealed under the
// primary key and reveals nothing of the value.
func TestSealedAtRest(t *testing.T) {
	inner := memory.New()
	r := ring(t, NewKey())
	s := New(inner, r)
	ctx := t.Context()
	secret := []byte(`{"token":"ACCESS_TOKEN_0123456789","state":"refreshtoken@@@abcdef"}`)
	v, err := s.Put(ctx, "token/x", secret, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.Get(ctx, "token/x")
	if raw.Version != v || !isSealed(raw.Value) || len(raw.Value) != len(secret)+Overhead {
		t.Fatalf("stored %d bytes v%d, sealed %v; want %d bytes v%d, sealed", len(raw.Value), raw.Version, isSealed(raw.Value), len(secret)+Overhead, v)
	}
	for _, part := range []string{"ACCESS_TOKEN", "refreshtoken", "token", "0123456789"} {
		if bytes.Contains(raw.Value, []byte(part)) {
			t.Fatalf("the stored bytes contain %q", part)
		}
	}
	if id, _ := sealedID(raw.Value); idString(id) != r.ID() {
		t.Fatalf("sealed under key %s, want the primary %s", idString(id), r.ID())
	}
	// Two writes of one value differ: the nonce is fresh each time.
	s.Put(ctx, "token/x", secret, v)
	again, _ := inner.Get(ctx, "token/x")
	if bytes.Equal(again.Value, raw.Value) {
		t.Fatal("two writes of one value stored the same bytes")
	}
	got, err := s.Get(ctx, "token/x")
	if err != nil || !bytes.Equal(got.Value, secret) {
		t.Fatalf("Get = %q, %v; want the value put", got.Value, err)
	}
	if _, err := s.Put(ctx, "k", make([]byte, store.MaxValueLen+1), 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Put of a value over MaxValueLen: error = %v, want ErrInvalid", err)
	}
}

// TestTampering: a value altered, moved to another key, under an unknown
// key, or stripped of its seal in a sealed store gives an error, not
// garbage.
func TestTampering(t *testing.T) {
	ctx := t.Context()
	r := ring(t, NewKey())
	cases := []struct {
		name   string
		alter  func(inner store.Store, raw []byte) // rewrites "token/a"
		want   error
		sealed bool // the store has been through a pass
	}{
		{"flipped bit", func(in store.Store, raw []byte) {
			raw[len(raw)-20] ^= 1
			put(t, in, "token/a", raw)
		}, ErrAuth, false},
		{"cut short", func(in store.Store, raw []byte) { put(t, in, "token/a", raw[:Overhead-1]) }, ErrAuth, false},
		{"moved from another key", func(in store.Store, _ []byte) {
			b, _ := in.Get(ctx, "token/b")
			put(t, in, "token/a", b.Value)
		}, ErrAuth, false},
		{"other key id", func(in store.Store, raw []byte) {
			raw[5] ^= 0xff
			put(t, in, "token/a", raw)
		}, ErrUnknownKey, false},
		{"seal stripped", func(in store.Store, _ []byte) { put(t, in, "token/a", []byte(`{"token":"forged"}`)) }, ErrPlain, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inner := memory.New()
			s, err := Open(ctx, inner, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.Put(ctx, "token/a", []byte("value of a"), 0)
			s.Put(ctx, "token/b", []byte("value of b"), 0)
			if c.sealed {
				if _, err := s.Reseal(ctx); err != nil {
					t.Fatal(err)
				}
			}
			raw, _ := inner.Get(ctx, "token/a")
			c.alter(inner, raw.Value)
			if e, err := s.Get(ctx, "token/a"); !errors.Is(err, c.want) {
				t.Fatalf("Get = %q, %v; want %v", e.Value, err, c.want)
			}
			if _, err := s.Load(ctx, "token/"); !errors.Is(err, c.want) {
				t.Fatalf("Load error = %v, want %v", err, c.want)
			}
			if _, err := s.Reseal(ctx); !errors.Is(err, c.want) {
				t.Fatalf("Reseal error = %v, want %v", err, c.want)
			}
			if e, err := s.Get(ctx, "token/b"); err != nil || string(e.Value) != "value of b" {
				t.Fatalf("the untouched value: Get = %q, %v", e.Value, err)
			}
		})
	}
}

// put overwrites key in inner, whatever its version.
func put(t *testing.T, inner store.Store, key string, raw []byte) {
	t.Helper()
	e, _ := inner.Get(t.Context(), key)
	if _, err := inner.Put(t.Context(), key, raw, e.Version); err != nil {
		t.Fatal(err)
	}
}

// TestOpenChecksTheKey: a store sealed under one key refuses another, and
// refuses to run without a key; errors name key ids, never keys.
func TestOpenChecksTheKey(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	if err := CheckNoKey(ctx, inner); err != nil {
		t.Fatalf("CheckNoKey(plain store) = %v", err)
	}
	k1, k2 := NewKey(), NewKey()
	s, err := Open(ctx, inner, ring(t, k1), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, "token/a", []byte("a"), 0)
	if err := CheckNoKey(ctx, inner); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), ring(t, k1).ID()) {
		t.Fatalf("CheckNoKey(sealed store) = %v; want ErrNoKey naming key %s", err, ring(t, k1).ID())
	}
	_, err = Open(ctx, inner, ring(t, k2), nil)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with another key: error = %v, want ErrUnknownKey", err)
	}
	msg := err.Error()
	for _, id := range []string{ring(t, k1).ID(), ring(t, k2).ID()} {
		if !strings.Contains(msg, id) {
			t.Errorf("error %q does not name key id %s", msg, id)
		}
	}
	for _, k := range []string{k1, k2} {
		raw, _ := base64.StdEncoding.DecodeString(k)
		if strings.Contains(msg, k) || strings.Contains(msg, string(raw)) || strings.Contains(msg, fmt.Sprintf("%x", raw)) {
			t.Fatalf("error %q reveals a key", msg)
		}
	}
	if s, err := Open(ctx, inner, ring(t, k2, k1), nil); err != nil || !s.Pending() {
		t.Fatalf("Open with the old key as a previous one: %v (pending %v); want a store with a pass pending", err, s != nil && s.Pending())
	}
}

// TestParseKey: only 32 bytes in standard base64 are a key, and the errors
// never repeat the input.
func TestParseKey(t *testing.T) {
	good := NewKey()
	if _, err := ParseKey(" " + good + "\n"); err != nil {
		t.Fatalf("ParseKey(NewKey()) = %v", err)
	}
	if _, err := ParseKey(strings.TrimRight(good, "=")); err != nil {
		t.Fatalf("ParseKey(unpadded) = %v", err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("sixteen bytes!!!"))
	for _, bad := range []string{"", "not base64 at all!", short, base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), good + good} {
		_, err := ParseKey(bad)
		if !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) error = %v, want ErrBadKey", bad, err)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseKey error %q repeats the input", err)
		}
	}
	file := "# the master key\n\n" + good + "\n" + NewKey() + "\n"
	r, err := ParseKeyFile([]byte(file))
	if err != nil || !r.Rotating() || len(r.IDs()) != 2 {
		t.Fatalf("ParseKeyFile = %v, %v; want two keys", r, err)
	}
	if want := ring(t, good).ID(); r.ID() != want {
		t.Fatalf("primary key id %s, want the first key's, %s", r.ID(), want)
	}
	if _, err := ParseKeyFile([]byte(good + "\n" + short + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), short) {
		t.Fatalf("ParseKeyFile with a bad second line: %v; want an error naming line 2 only", err)
	}
	if _, err := ParseKeyFile([]byte("# nothing\n")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("ParseKeyFile(no key) = %v, want ErrBadKey", err)
	}
}

// TestMigrate: a plain store opened with a key reads its values as they
// are, a pass seals them all in place keeping their versions, and from
// then on a plain value is refused.
func TestMigrate(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	want := map[string]uint64{}
	for i := range 100 {
		k := fmt.Sprintf("token/%03d", i)
		v, _ := inner.Put(ctx, k, []byte("plain "+k), 0)
		want[k] = v
	}
	s, err := Open(ctx, inner, ring(t, NewKey()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Pending() {
		t.Fatal("a plain store opened with a key has no pass pending")
	}
	if e, err := s.Get(ctx, "token/007"); err != nil || string(e.Value) != "plain token/007" {
		t.Fatalf("Get of a plain value before the pass = %q, %v", e.Value, err)
	}
	n, err := s.Reseal(ctx)
	if err != nil || n.Values != 100 || n.Resealed != 100 {
		t.Fatalf("Reseal = %+v, %v; want 100 values resealed", n, err)
	}
	ents, err := s.Load(ctx, "token/")
	if err != nil || len(ents) != 100 {
		t.Fatalf("Load after the pass: %d entries, %v", len(ents), err)
	}
	for _, e := range ents {
		raw, _ := inner.Get(ctx, e.Key)
		if string(e.Value) != "plain "+e.Key || e.Version != want[e.Key] || !isSealed(raw.Value) {
			t.Fatalf("%s after the pass: %q v%d (sealed %v); want the same value and version, sealed", e.Key, e.Value, e.Version, isSealed(raw.Value))
		}
	}
	if n, err := s.Reseal(ctx); err != nil || n.Resealed != 0 || n.Current != 100 {
		t.Fatalf("a second pass = %+v, %v; want nothing to do", n, err)
	}
	inner.Put(ctx, "token/new", []byte("plain"), 0)
	if _, err := s.Get(ctx, "token/new"); !errors.Is(err, ErrPlain) {
		t.Fatalf("Get of a plain value after the pass: %v, want ErrPlain", err)
	}
}

// TestRotateUnderWrites: while writers keep replacing values with
// compare-and-swap through two stores sharing one backend, two passes
// re-seal everything under a new key; no write is lost or turned away
// because of them, and the old key is no longer needed.
func TestRotateUnderWrites(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	oldKey, newKey := NewKey(), NewKey()
	s, _ := Open(ctx, inner, ring(t, oldKey), nil)
	const keys, writes = 200, 20
	for i := range keys {
		s.Put(ctx, fmt.Sprintf("token/%03d", i), []byte("0"), 0)
	}
	if _, err := s.Reseal(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := Open(ctx, inner, ring(t, newKey, oldKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(ctx, inner, ring(t, newKey, oldKey), nil)
	var wg sync.WaitGroup
	var conflicts sync.Map
	for w := range 4 {
		wg.Go(func() {
			st := []*Store{a, b}[w%2]
			for i := w; i < keys; i += 4 {
				k := fmt.Sprintf("token/%03d", i)
				for n := 1; n <= writes; n++ {
					e, err := st.Get(ctx, k)
					if err != nil {
						t.Errorf("Get %s: %v", k, err)
						return
					}
					if _, err := st.Put(ctx, k, fmt.Appendf(nil, "%d", n), e.Version); err != nil {
						conflicts.Store(k, err) // only this writer writes k: a conflict is the pass's doing
					}
				}
			}
		})
	}
	for _, st := range []*Store{a, b} {
		wg.Go(func() {
			if _, err := st.Reseal(ctx); err != nil {
				t.Errorf("Reseal: %v", err)
			}
		})
	}
	wg.Wait()
	conflicts.Range(func(k, err any) bool {
		t.Errorf("a write of %s failed during the passes: %v", k, err)
		return true
	})
	if _, err := a.Reseal(ctx); err != nil { // writes after a pass's look are under the new key already
		t.Fatal(err)
	}
	only, err := Open(ctx, inner, ring(t, newKey), nil)
	if err != nil {
		t.Fatalf("Open with the new key alone: %v", err)
	}
	ents, err := only.Load(ctx, "token/")
	if err != nil || len(ents) != keys {
		t.Fatalf("Load with the new key alone: %d values, %v", len(ents), err)
	}
	for _, e := range ents {
		if string(e.Value) != fmt.Sprint(writes) || e.Version != writes+1 {
			t.Fatalf("%s = %q v%d, want %q v%d", e.Key, e.Value, e.Version, fmt.Sprint(writes), writes+1)
		}
	}
	if _, err := Open(ctx, inner, ring(t, oldKey), nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with the old key after rotation: %v, want ErrUnknownKey", err)
	}
}
