package token

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// idList keeps IDs' sorted list between changes to the set of
// credentials. A client paging through a platform's 100,000 authorizers
// asks for the list once a page; gathered and sorted anew each time, that
// was a hundred sorts of 100,000 ids and some 300 MB of garbage per pass.
type idList struct {
	gen atomic.Uint64 // bumped after every credential added or dropped

	mu  sync.Mutex
	ids []string // sorted, as of gen at
	at  uint64
	ok  bool
}

// changed records that a credential was added to or dropped from the
// Manager's entries; it is called after the change, so that a list built
// meanwhile is rebuilt on the next call.
func (l *idList) changed() { l.gen.Add(1) }

// list returns a sorted copy of the ids, from the kept list while no
// credential was added or dropped since it was built.
func (l *idList) list(m *Manager) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen := l.gen.Load(); !l.ok || l.at != gen {
		ids := make([]string, 0, len(l.ids))
		m.entries.Range(func(k, _ any) bool {
			ids = append(ids, k.(string))
			return true
		})
		sort.Strings(ids)
		l.ids, l.at, l.ok = ids, gen, true
	}
	return slices.Clone(l.ids)
}
