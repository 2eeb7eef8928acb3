package token

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/store/memory"
	"github.com/wxtoken/wxtoken/wechat"
)

// TestIDsFollowAddsAndDrops: the kept list of ids changes with every
// credential added, and with one dropped when its Add fails; a caller may
// do what it likes with the slice it gets.
func TestIDsFollowAddsAndDrops(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	m, err := New(Config{Store: st}, []Credential{{ID: "b", Source: idleSource{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := t.Context()
	check := func(want ...string) {
		t.Helper()
		if got := m.IDs(); !slices.Equal(got, want) {
			t.Fatalf("IDs() = %q, want %q", got, want)
		}
	}
	check("b")
	seed := &Seed{Token: wechat.Token{Value: "tok", ExpiresIn: time.Hour}, State: "refresh"}
	if err := m.Add(ctx, Credential{ID: "c", Owner: "p", Source: idleSource{}}, seed); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(ctx, Credential{ID: "a", Owner: "p", Source: idleSource{}}, seed); err != nil {
		t.Fatal(err)
	}
	got := m.IDs()
	got[0] = "changed by the caller"
	check("a", "b", "c")

	// "d" is stored for another owner: its Add fails, and drops it.
	rec := record{Owner: "other", State: "x"}
	if _, err := st.Put(ctx, recordKey("d"), rec.encode(), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(ctx, Credential{ID: "d", Owner: "p", Source: idleSource{}}, seed); !errors.Is(err, ErrOwned) {
		t.Fatalf("Add of another owner's id = %v, want ErrOwned", err)
	}
	check("a", "b", "c")
}
