package bolt

import (
	"fmt"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// Writes are committed in groups. bbolt runs write transactions one at a
// time and makes each durable (fsync) before it returns, so when many
// credentials are written at once, as when a platform imports thousands
// of authorizers and each gets its first token, the fsyncs bound the rate,
// not the writes. A write that arrives while another commits therefore
// waits for that commit and then goes in one transaction with every other
// write that waited, under one fsync. A lone write commits at once, as
// before; no write waits for a timer (bbolt's own DB.Batch waits up to
// 10 ms to gather a batch).
//
// Each write keeps its own result: one that finds a version conflict
// changes nothing and fails none of the others. The functions given to
// update only check and then write one key, so an error from one means it
// wrote nothing.

// write is one caller's change, waiting to be committed.
type write struct {
	fn   func(*bbolt.Tx) error
	err  error
	done chan bool // true: committed, with err its result; false: commit the queue
}

// committer queues writes while one is being committed.
type committer struct {
	mu      sync.Mutex
	queue   []*write
	leading bool // a writer is committing the queue
}

// update runs fn in a write transaction, shared with the writes queued
// beside it, and returns fn's result once the transaction is durable.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan bool, 1)}
	c := &s.commits
	c.mu.Lock()
	c.queue = append(c.queue, w)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if !lead && <-w.done {
		return w.err
	}
	// This writer commits the queue, its own write first in it.
	s.commitQueue()
	return w.err
}

// commitQueue commits every queued write in one transaction, then hands
// the next commit to the first writer queued meanwhile.
func (s *Store) commitQueue() {
	c := &s.commits
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	err := s.commitBatch(batch)
	for _, w := range batch {
		if err != nil {
			w.err = err
		}
	}
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].done <- false
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	for _, w := range batch[1:] {
		w.done <- true
	}
}

// commitBatch runs the writes in one transaction. A panic in one of them
// rolls the transaction back and fails them all, rather than leave the
// writers waiting.
func (s *Store) commitBatch(batch []*write) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bolt: write transaction panicked: %v", r)
		}
	}()
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, w := range batch {
			w.err = w.fn(tx)
		}
		return nil
	})
}
