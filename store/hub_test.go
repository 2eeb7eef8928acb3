package store

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

func recv(t *testing.T, ch <-chan string) (string, bool) {
	t.Helper()
	select {
	case k, ok := <-ch:
		return k, ok
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered within 5s")
		return "", false
	}
}

// drain takes whatever the hub has for ch once its goroutines are idle.
// Inside a synctest bubble that is deterministic: after synctest.Wait the
// serving goroutine is either waiting to hand over a key or has none.
func drain(ch <-chan string) []string {
	var got []string
	for {
		synctest.Wait()
		select {
		case k := <-ch:
			got = append(got, k)
		default:
			return got
		}
	}
}

// TestHubOverflow has a reader fall behind by more than the buffer: the
// writer must not wait (a blocked Notify would deadlock the bubble), and
// what the reader gets must account for every key, delivered or covered
// by a later "".
func TestHubOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h Hub
		defer h.Close()
		ch, err := h.Watch(t.Context(), "k/")
		if err != nil {
			t.Fatal(err)
		}
		const n = 3 * hubBuffer
		for i := range n {
			h.Notify(fmt.Sprintf("k/%d", i))
		}
		got := drain(ch)
		last, resets := -1, 0
		for _, k := range got {
			if k == "" {
				resets++
				continue
			}
			var i int
			if _, err := fmt.Sscanf(k, "k/%d", &i); err != nil || i <= last {
				t.Fatalf("delivered %q out of order: %q", k, got)
			}
			last = i
		}
		if resets == 0 || len(got) > hubBuffer+1 {
			t.Fatalf("a reader %d keys behind got %d deliveries, %d of them \"\"; want some \"\" and no more than the buffer", n, len(got), resets)
		}
		if end := got[len(got)-1]; end != "" && end != fmt.Sprintf("k/%d", n-1) {
			t.Fatalf("deliveries end with %q: the last keys are neither delivered nor covered by \"\"", end)
		}

		h.Notify("other/x")
		h.Notify("k/later")
		if got := drain(ch); len(got) != 1 || got[0] != "k/later" {
			t.Fatalf("after catching up got %q, want [k/later]", got)
		}

		h.Notify("k/covered")
		h.NotifyAll()
		got = drain(ch)
		if len(got) == 0 || len(got) > 2 || got[len(got)-1] != "" {
			t.Fatalf("after NotifyAll got %q, want \"\" last (k/covered may come first)", got)
		}
	})
}

func TestHubClose(t *testing.T) {
	var h Hub
	ch, err := h.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	h.Notify("x")
	h.Close()
	for {
		if _, ok := recv(t, ch); !ok {
			break
		}
	}
	if _, err := h.Watch(t.Context(), ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("Watch after Close error = %v, want ErrClosed", err)
	}
	h.Notify("y") // no subscriber left; must not panic
	h.Close()     // idempotent
}
