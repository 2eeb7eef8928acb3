package store

import "context"

// ChangedLoader is implemented by stores that can leave out of a Load the
// entries a caller holds already, without copying their values. Instances
// re-read every record now and then, in case a change notification was
// lost; with a hundred thousand records, nearly all unchanged, copying
// each value only to compare its version costs tens of megabytes a pass.
type ChangedLoader interface {
	// LoadChanged is Load of the keys under prefix whose stored version
	// is above held(key). held is called once for each such key, possibly
	// while the store holds a read transaction: it must be quick and must
	// not call the store.
	LoadChanged(ctx context.Context, prefix string, held func(key string) uint64) ([]KeyEntry, error)
}

// LoadChanged returns the entries under prefix whose version is above
// held(key), with s's own LoadChanged if it has one, else with Load and a
// filter: the result is the same, only the cost differs.
func LoadChanged(ctx context.Context, s Store, prefix string, held func(key string) uint64) ([]KeyEntry, error) {
	if cl, ok := s.(ChangedLoader); ok {
		return cl.LoadChanged(ctx, prefix, held)
	}
	ents, err := s.Load(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := ents[:0]
	for _, e := range ents {
		if e.Version > held(e.Key) {
			out = append(out, e)
		}
	}
	clear(ents[len(out):])
	return out, nil
}
